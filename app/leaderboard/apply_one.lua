-- Puts standings on one family's boards outside a flush (follows apply.lua; no room is told).
-- KEYS[1..4] as apply.lua: the family's placements, hidden set, erasures, generations
-- ARGV[1] JSON context {"family", "prefixes"}; ARGV[2] JSON array of standings (as apply.lua
-- describes). Returns JSON {"changed": board entries changed, "erased": [player, ...] taken
-- off as erased (absent when none)}. "Now" is each standing's own time.
local changed = 0
for _, s in ipairs(cjson.decode(ARGV[2])) do
  local now_pks = {}
  for _, e in ipairs(s.pk) do now_pks[#now_pks + 1] = e[2] end
  changed = changed + apply_standing(s, now_pks, function() end)
end
if #erased_now == 0 then return cjson.encode({changed = changed}) end
return cjson.encode({changed = changed, erased = erased_now})
