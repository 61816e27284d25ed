"""Every Redis key name the service uses, built here and nowhere else.

The Lua scripts never spell a key: they get the fixed ones as KEYS and the prefixes of the
ones they build (a board's, a room's) as ARGV, both from this module, so that the Python and
the Lua cannot disagree about a name.

A board's key is `lb:{<board>}:<period key>`, where the period key is `all`, `d:<day>`,
`w:<week>` (app/leaderboard/periods.py); its index (player -> version and member) is that key
plus IDX_SUFFIX.

Hash slots (Redis Cluster; on one server the braces are just characters). What one script or
transaction touches shares a hash tag, and the tags spread the keys over the nodes:
- a board family `{<board>}` (`global`, `region:<code>`, `guild:<name>`, `tournament:<id>`): its
  boards of every period, its room's published rows and seq, and the family's own copies of the
  per-player state the flush consults (family_keys). `global`'s copies are the service's
  own: PLACE_KEY, HIDDEN_KEY, ERASED_KEY, GENERATION_KEY. On a cluster a flush runs one script
  per family (app/leaderboard/boards.py BoardStore.run_parts); on one server one script serves
  every family (EVERY_FAMILY) with `global`'s keys, and the families' copies stay empty;
- the delta queue `lb:queue` with its lost mark (`{lb:queue}`);
- the rate-limit windows, the suspended set and the difficulty bonuses in `{admission}`:
  admission.lua reads all three at once, and an admission shares its window with the plain
  rate limit of the same key (spreading them would need per-player suspension and bonus keys);
- single keys (the lease, NAMES_KEY, the rooms touched, the operators' stats) wherever they hash.
Key names of releases before these tags are never read: upgrading rebuilds the read model
from MongoDB once (BUILT_KEY is a new name).
"""

from __future__ import annotations

# ---- boards
BOARD_PREFIX = "lb:"
IDX_SUFFIX = ":idx"
# player -> "<moves>|<region>|<guild>": where the player's region and guild entries are, and
# after how many moves. It is what lets a move take the player off its old boards, and what
# tells a standing written before a move (fewer moves) from one written after it.
GLOBAL_FAMILY = "global"
# The family of a run that serves every family at once, on one Redis server (apply.lua): hash
# slots do not matter there, and one run reads each standing's per-player state once.
EVERY_FAMILY = "*"
PLACE_KEY = "lb:{global}:@place"
# Players an operator hid: never on a board while they are in this set.
HIDDEN_KEY = "lb:{global}:@hidden"
# player -> erased_ms: standings of a document created at or before that moment are never applied.
ERASED_KEY = "lb:{global}:@erased"
# player -> created_ms of the player on the boards, for players created again after an erasure
# only: a late standing of the erased one (older than the erasure) then leaves the new one alone.
GENERATION_KEY = "lb:{global}:@generation"
NAMES_KEY = "names"
# Set once the read model was rebuilt from MongoDB; deleted to order a rebuild.
BUILT_KEY = "lb:built:tagged"

# ---- the delta queue and its flusher
STREAM = "lb:queue"
GROUP = "flushers"
# Set when standings may have been dropped before the flusher applied them (app/leaderboard/queue.py).
LOST_KEY = "{lb:queue}:lost"  # the slot of STREAM, which has no braces
LEASE_KEY = "lb:lease"
# Rooms scored by when a standing last touched them. A new key rather than the plain set
# "lb:rooms" of earlier releases: while an older instance still runs its script (a rolling
# upgrade) it SADDs that name, and a sorted set there would fail it with WRONGTYPE half-way
# through. Each flush folds whatever that old set holds into this one.
ROOMS_KEY = "lb:rooms:touched"
OLD_ROOMS_KEY = "lb:rooms"
# `lb:rolled:<period>`: the period key the last flush saw as current (a change is a rollover).
ROLLED_PREFIX = "lb:rolled:"

# ---- rooms
# `lb:pub:{<room>}:<period key>`: rank -> "<member> <score>", the rows last published to a room.
PUB_PREFIX = "lb:pub:"
# `lb:pubpk:{<room>}`: period -> the period key its published rows are of.
PUBPK_PREFIX = "lb:pubpk:"
# `seq:{<room>}`: the room's delta sequence number.
SEQ_PREFIX = "seq:"

# ---- fair play and operations
# The admission script (app/anticheat/admission.lua) reads these three in one slot.
ADMISSION_TAG = "{admission}"
SUSPENDED_KEY = "{admission}:suspended"
RATE_LIMIT_PREFIX = "rl:"
BONUS_KEY = "{admission}:difficulty:bonus"
STATS_PREFIX = "ops:stats:"
INSTANCES_KEY = "ops:instances"


def board(board_name: str, period_key: str) -> str:
    return f"{BOARD_PREFIX}{{{board_name}}}:{period_key}"


def board_prefix(board_name: str) -> str:
    """`lb:{<board>}:`, to which a script appends period keys."""
    return f"{BOARD_PREFIX}{{{board_name}}}:"


def family_keys(family: str) -> list[str]:
    """apply.lua's KEYS for one board family: its copies of the placements, hidden set,
    erasures and generations (`@` never starts a period key)."""
    prefix = board_prefix(family)
    return [f"{prefix}@place", f"{prefix}@hidden", f"{prefix}@erased", f"{prefix}@generation"]


def idx(board_key: str) -> str:
    return board_key + IDX_SUFFIX


def published(room: str, period_key: str) -> str:
    return f"{PUB_PREFIX}{{{room}}}:{period_key}"


def seq(room: str) -> str:
    return f"{SEQ_PREFIX}{{{room}}}"


def rate_limit(key: str) -> str:
    """A rate-limit window, in the slot of SUSPENDED_KEY and BONUS_KEY (admission.lua)."""
    return f"{RATE_LIMIT_PREFIX}{ADMISSION_TAG}:{key}"


# Prefixes the flush script builds its keys from, in one JSON object (flush.lua reads them by name).
SCRIPT_PREFIXES = {
    "board": BOARD_PREFIX, "idx": IDX_SUFFIX, "pub": PUB_PREFIX, "pubpk": PUBPK_PREFIX, "seq": SEQ_PREFIX,
    "rolled": ROLLED_PREFIX,
}
