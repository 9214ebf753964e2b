-- Confirm a candidate incident by hand (farm incidents confirm), memoised like a chunk. A rule
-- with require_approve makes candidates, which never become visible by themselves; confirming
-- one makes it visible (it stays a candidate, as in Keep). req.id is the incident id; an
-- incident that is not a candidate is left as it is.
local done = redis.call('HGET', memo, 's:' .. req.id)
if done then return done end
local inc = load(req.id)
if not inc or inc.tenant ~= T or inc.candidate ~= 1 then return '' end
inc.visible = 1
save(inc)
local snap = snapshot(inc)
redis.call('HSET', memo, 's:' .. req.id, snap)
redis.call('EXPIRE', memo, req.mttl)
return snap
