-- The chunk: alerts at positions below the memo's `upto` were decided by an earlier delivery
-- of this batch and are replayed from the memo; the rest are decided now.
local upto = tonumber(redis.call('HGET', memo, 'upto') or '0')
local out, snaps, memo_writes = {}, {}, {}
for _, it in ipairs(req.items) do
  local pos = it[1]
  if pos < upto then
    local raw = redis.call('HGET', memo, pos)
    if raw then
      local got = cjson.decode(raw)
      out[#out + 1] = {pos, got[1], got[2]}
      for _, id in ipairs(got[1]) do
        if snaps[id] == nil then snaps[id] = redis.call('HGET', memo, 's:' .. id) or false end
      end
    end
  else
    local ids, links = decide(it)
    if #ids > 0 then
      out[#out + 1] = {pos, ids, links}
      memo_writes[#memo_writes + 1] = pos
      memo_writes[#memo_writes + 1] = cjson.encode({ids, links})
    end
  end
end
for _, id in ipairs(dirty_order) do
  local inc = cache[id]
  save(inc)
  snaps[id] = snapshot(inc)
  memo_writes[#memo_writes + 1] = 's:' .. id
  memo_writes[#memo_writes + 1] = snaps[id]
  if inc.version > 1 and inc.status ~= 'resolved' then updated = updated + 1 end
end
save_number()
if req['end'] > upto then
  memo_writes[#memo_writes + 1] = 'upto'
  memo_writes[#memo_writes + 1] = req['end']
end
for from = 1, #memo_writes, 2000 do
  redis.call('HSET', memo, unpack(memo_writes, from, math.min(from + 1999, #memo_writes)))
end
if #memo_writes > 0 then redis.call('EXPIRE', memo, req.mttl) end
local snap_list = {}
for _, snap in pairs(snaps) do if snap then snap_list[#snap_list + 1] = snap end end
return cjson.encode({out, snap_list, {opened, updated, resolved}})
