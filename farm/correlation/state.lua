-- Incident state, shared by the chunk and the resolve scripts (farm/correlation/decide.py
-- describes the contract). KEYS[1] the batch's incident memo. ARGV[1] the request as JSON.
-- The script builds the incident keys itself (their names depend on what it reads), so every
-- key farm uses must live on one Redis node.
local req = cjson.decode(ARGV[1])
local P, T, NOW, ISO, TTL = req.p, req.t, req.now, req.iso, req.ttl
local memo = KEYS[1]
local SEVERITY = {'low', 'info', 'warning', 'high', 'critical'}

-- Per call: incidents read (id -> state, false when absent), newest incident per group key
-- (gkey -> id, false when none), members read, member writes not yet saved, incidents opened
-- by this call (they have no member in Redis to read).
local cache, groups, dirty, dirty_order, members, writes, fresh = {}, {}, {}, {}, {}, {}, {}
local opened, updated, resolved = 0, 0, 0
-- The tenant's last incident running number: read at the first incident this call opens,
-- counted here, written back once by save_number (the call is atomic, so this is INCR's result).
local number_key, last_number = P .. ':incnumber:' .. T, nil

local function ikey(id) return P .. ':incident:' .. id end
local MEMBER = 'm:'  -- a member's field in its incident's hash: 'm:' .. fingerprint
local function fkey(fp) return P .. ':incfp:' .. T .. ':' .. fp end

-- An incident's state is one JSON string in the `state` field of its hash (one read and one
-- write per call, whatever its size). `touched` sits beside it because cjson keeps only 14
-- digits of a number, and a time needs more; `count` is for people reading Redis. Its members
-- are fields of the same hash, so one HSET and one EXPIRE save the incident and its members.
local function load(id)
  local inc = cache[id]
  if inc ~= nil then return inc end
  local got = redis.call('HMGET', ikey(id), 'state', 'touched')
  inc = got[1] and cjson.decode(got[1]) or false
  if inc then inc.touched = tonumber(got[2]) end
  cache[id] = inc
  return inc
end

local function touch(inc)
  if not dirty[inc.id] then
    dirty[inc.id] = true
    dirty_order[#dirty_order + 1] = inc.id
  end
end

local function member(inc, fp)
  local m = members[inc.id]
  if not m then m = {}; members[inc.id] = m end
  local got = m[fp]
  if got == nil then
    local raw = not fresh[inc.id] and redis.call('HGET', ikey(inc.id), MEMBER .. fp)
    got = raw and cjson.decode(raw) or false
    m[fp] = got
  end
  return got
end

local function add_to_list(list, value)
  if value == nil or value == '' or value == cjson.null then return end
  for _, v in ipairs(list) do if v == value then return end end
  list[#list + 1] = value
end

-- A new version of fingerprint fp (item it) for incident inc: the member's latest status,
-- unresolvedCounter and lastReceived, and the counts derived from them. Returns true if fp
-- was not a member yet.
local function set_member(inc, it)
  local fp, status, ur, lr = it[2], it[4], it[5], it[6]
  local old = member(inc, fp)
  local new = old == false
  if new then
    inc.count = inc.count + 1
    if inc.first_fp == '' then inc.first_fp = fp end
  else
    inc.firing_sum = inc.firing_sum - old[2]
    if old[1] ~= 'resolved' then inc.unresolved = inc.unresolved - 1 end
    if old[1] ~= 'firing' then inc.nonfiring = inc.nonfiring - 1 end
  end
  inc.firing_sum = inc.firing_sum + ur
  if status ~= 'resolved' then inc.unresolved = inc.unresolved + 1 end
  if status ~= 'firing' then inc.nonfiring = inc.nonfiring + 1 end
  members[inc.id][fp] = {status, ur, lr}
  local w = writes[inc.id]
  if not w then w = {}; writes[inc.id] = w end
  w[#w + 1] = fp
  w[#w + 1] = cjson.encode({status, ur, lr})
  if lr >= inc.last_lr then inc.last_lr = lr; inc.last_fp = fp end
  if inc.touched < NOW then inc.touched = NOW end
  touch(inc)
  return new
end

local function resolve(inc)
  inc.status = 'resolved'
  inc['end'] = ISO
  for _, field in ipairs(redis.call('HKEYS', ikey(inc.id))) do
    if string.sub(field, 1, 2) == MEMBER then
      redis.call('SREM', fkey(string.sub(field, 3)), inc.id)
    end
  end
  local w = writes[inc.id] or {}
  for i = 1, #w, 2 do redis.call('SREM', fkey(w[i]), inc.id) end
  resolved = resolved + 1
  touch(inc)
end

local function check_resolve(inc)
  if inc.status == 'resolved' or inc.count == 0 then return end
  local how = inc.resolve_on
  local done = false
  if how == 'all' then done = inc.unresolved == 0
  elseif how == 'first' then local m = member(inc, inc.first_fp); done = m and m[1] == 'resolved'
  elseif how == 'last' then local m = member(inc, inc.last_fp); done = m and m[1] == 'resolved'
  end
  if done then resolve(inc) end
end

local function render(inc)
  local out = {}
  local parts = inc.parts
  if #parts == 0 then
    out[1] = inc.rule
  else
    for i, part in ipairs(parts) do
      if i % 2 == 1 then out[#out + 1] = part
      else out[#out + 1] = table.concat(inc.vals[i / 2], ',') end
    end
  end
  local name = table.concat(out)
  if inc.multi == 1 then name = inc.group .. ' - ' .. name end
  if inc.prefix ~= '' then name = inc.prefix .. '-' .. inc.number .. ' - ' .. name end
  inc.name = name
end

local function next_number()
  last_number = (last_number or tonumber(redis.call('GET', number_key) or '0')) + 1
  return last_number
end

local function save_number()
  if last_number then redis.call('SET', number_key, last_number) end
end

local function create(rule, spec, group, it)
  local h = redis.sha1hex(T .. '\0' .. rule .. '\0' .. group .. '\0' .. it[3])
  local id = string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-' .. string.sub(h, 13, 16)
    .. '-' .. string.sub(h, 17, 20) .. '-' .. string.sub(h, 21, 32)
  local existing = load(id)
  if existing then return existing end
  local vals = {}
  for i = 1, math.floor(#spec[7] / 2) do vals[i] = {} end
  local inc = {id = id, tenant = T, rule = rule, group = group, name = '', status = 'firing',
    severity = 0, count = 0, firing_sum = 0, unresolved = 0, nonfiring = 0, first_fp = '',
    last_fp = '', last_lr = '', visible = 0, candidate = spec[6], mask = 0, start = '',
    last_seen = '', touched = NOW, created = ISO, past = '', ['end'] = '', version = 0,
    number = next_number(), vals = vals, sources = {},
    services = {}, parts = spec[7], prefix = spec[8], multi = spec[9], resolve_on = spec[5],
    nsub = spec[4], threshold = spec[2], all = spec[3], approve = spec[6]}
  cache[id] = inc
  fresh[id] = true
  opened = opened + 1
  touch(inc)
  return inc
end

-- Returns true if the alert's fingerprint is a new member (the caller adds the incident to
-- the fingerprint's set).
local function attach(inc, it, match)
  local new = set_member(inc, it)
  local lr = it[6]
  if inc.start == '' or lr < inc.start then inc.start = lr end
  if lr > inc.last_seen then inc.last_seen = lr end
  if it[7] > inc.severity then inc.severity = it[7] end
  for _, s in ipairs(it[8]) do add_to_list(inc.sources, s) end
  add_to_list(inc.services, it[9])
  local mask = match[3]
  inc.mask = bit.bor(inc.mask, mask)
  for i, values in ipairs(match[4]) do add_to_list(inc.vals[i], values) end
  if inc.visible == 0 and inc.approve == 0 then
    local n = math.max(inc.count, inc.firing_sum)
    local full = bit.lshift(1, inc.nsub) - 1
    if n >= inc.threshold and (inc.all == 0 or mask == full
        or (inc.mask == full and inc.nonfiring == 0)) then
      inc.visible = 1
    end
  end
  check_resolve(inc)
  return new
end

local function newest(rule, group)
  local gkey = P .. ':incgroup:' .. T .. ':' .. rule .. ':' .. group
  local id = groups[gkey]
  if id == nil then
    id = redis.call('GET', gkey) or false
    groups[gkey] = id
  end
  return gkey, id and load(id) or false
end

-- An acknowledged incident is still open (Keep's active statuses are firing and acknowledged).
local function expired(inc, spec)
  return inc.status == 'resolved' or inc.touched < NOW - spec[1]
end

-- One alert: each rule match joins or opens an incident, then its other active incidents
-- learn its new status (Keep's resolve check for a stored alert). The fingerprint's set is read
-- once, before the matches (the incidents they add are `seen`, so the loop over the others
-- would skip them anyway), and the incidents it newly joined are added in one write after
-- them, leaving out any its own status resolved meanwhile (their resolve removed them).
local function decide(it)
  local ids, links, seen, joined = {}, {}, {}, {}
  local fp = it[2]
  local fk = fkey(fp)
  local before = redis.call('SMEMBERS', fk)
  for _, match in ipairs(it[10]) do
    local rule, group = match[1], match[2]
    local spec = req.rules[rule]
    local gkey, inc = newest(rule, group)
    if not inc or expired(inc, spec) then
      if it[4] == 'firing' then
        local past = inc and inc.id or ''
        inc = create(rule, spec, group, it)
        if inc.past == '' then inc.past = past end
        redis.call('SET', gkey, inc.id, 'EX', TTL)
        groups[gkey] = inc.id
      else
        inc = false
      end
    end
    if inc then
      if attach(inc, it, match) then
        links[#links + 1] = inc.id
        joined[#joined + 1] = inc
      end
      if not seen[inc.id] then seen[inc.id] = true; ids[#ids + 1] = inc.id end
    end
  end
  local add = {}
  for _, inc in ipairs(joined) do
    if inc.status ~= 'resolved' then add[#add + 1] = inc.id end
  end
  if #add > 0 then redis.call('SADD', fk, unpack(add)) end
  if #links > 0 then redis.call('EXPIRE', fk, TTL) end
  for _, id in ipairs(before) do
    if not seen[id] then
      local inc = load(id)
      if not inc then
        redis.call('SREM', fk, id)
      elseif inc.status ~= 'resolved' then
        set_member(inc, it)
        check_resolve(inc)
        seen[id] = true; ids[#ids + 1] = id
      end
    end
  end
  table.sort(ids)
  return ids, links
end

local function snapshot(inc)
  return cjson.encode({id = inc.id, tenant = inc.tenant, rule = inc.rule,
    rule_fingerprint = inc.group, name = inc.name, status = inc.status,
    severity = SEVERITY[inc.severity] or 'info', alerts_count = inc.count,
    is_visible = inc.visible == 1, is_candidate = inc.candidate == 1, is_predicted = true,
    start_time = inc.start, last_seen_time = inc.last_seen, end_time = inc['end'],
    creation_time = inc.created, same_incident_in_the_past_id = inc.past,
    resolve_on = inc.resolve_on, incident_type = 'rule', running_number = inc.number,
    sources = inc.sources, services = inc.services, version = inc.version})
end

local function save(inc)
  render(inc)  -- once per save: the values it joins only grow while the call attaches alerts
  inc.version = inc.version + 1
  local touched = inc.touched
  inc.touched = nil
  local flat = {'count', inc.count, 'touched', touched, 'state', cjson.encode(inc)}
  inc.touched = touched
  local w = writes[inc.id] or {}
  writes[inc.id] = nil
  for i = 1, #w, 2 do
    flat[#flat + 1] = MEMBER .. w[i]
    flat[#flat + 1] = w[i + 1]
    if #flat >= 2000 then
      redis.call('HSET', ikey(inc.id), unpack(flat))
      flat = {}
    end
  end
  if #flat > 0 then redis.call('HSET', ikey(inc.id), unpack(flat)) end
  redis.call('EXPIRE', ikey(inc.id), TTL)
end

-- A change by hand (the resolve, acknowledge and confirm scripts), memoised like a chunk: a
-- redelivered control batch returns the same snapshot. req.id is the incident id; `change(inc)`
-- makes the change and returns true, or returns false when it does not apply (the incident is
-- then left as it is).
local function by_hand(change)
  local done = redis.call('HGET', memo, 's:' .. req.id)
  if done then return done end
  local inc = load(req.id)
  if not inc or inc.tenant ~= T or not change(inc) then return '' end
  save(inc)
  local snap = snapshot(inc)
  redis.call('HSET', memo, 's:' .. req.id, snap)
  redis.call('EXPIRE', memo, req.mttl)
  return snap
end
