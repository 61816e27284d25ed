// A board's rows in a table (rank, player, score), drawn alike wherever the page shows a board:
// the Watch tab's (static/app.js) and a tournament's (static/tournaments.js). The board itself,
// snapshot + deltas, is LiveBoard in static/client.js, which has no DOM code.

const numberFormat = new Intl.NumberFormat();

/** A score or a count as the page writes it, in the browser's locale; "–" for none. */
export function formatNumber(n) {
  return n == null ? "–" : numberFormat.format(n);
}

/** The row of one board entry {rank, player_id, name, score}: td (rank), td.player, td.num.score. */
export function boardRow(entry) {
  const tr = document.createElement("tr");
  tr.dataset.playerId = entry.player_id;
  const rank = document.createElement("td");
  rank.textContent = entry.rank;
  const name = document.createElement("td");
  name.className = "player";
  name.textContent = entry.name;
  const score = document.createElement("td");
  score.className = "num score";
  score.textContent = formatNumber(entry.score);
  tr.append(rank, name, score);
  return tr;
}

/** The one row of a board with no entries: `text` across its three columns. */
export function emptyRow(text) {
  const tr = document.createElement("tr");
  tr.className = "empty";
  const cell = document.createElement("td");
  cell.colSpan = 3;
  cell.textContent = text;
  tr.append(cell);
  return tr;
}
