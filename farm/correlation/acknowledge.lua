-- Acknowledge a firing incident by hand (farm incidents acknowledge), memoised like a chunk.
-- An acknowledged incident stays open: alerts still join it and it still resolves by its
-- rule's resolve_on. req.id is the incident id; an incident that is not firing is left as it is.
local done = redis.call('HGET', memo, 's:' .. req.id)
if done then return done end
local inc = load(req.id)
if not inc or inc.tenant ~= T or inc.status ~= 'firing' then return '' end
inc.status = 'acknowledged'
save(inc)
local snap = snapshot(inc)
redis.call('HSET', memo, 's:' .. req.id, snap)
redis.call('EXPIRE', memo, req.mttl)
return snap
