-- Resolve one incident by hand (farm incidents resolve), memoised like a chunk: a redelivered
-- control batch returns the same snapshot. req.id is the incident id.
local done = redis.call('HGET', memo, 's:' .. req.id)
if done then return done end
local inc = load(req.id)
if not inc or inc.tenant ~= T then return '' end
if inc.status ~= 'resolved' then resolve(inc) end
save(inc)
local snap = snapshot(inc)
redis.call('HSET', memo, 's:' .. req.id, snap)
redis.call('EXPIRE', memo, req.mttl)
return snap
