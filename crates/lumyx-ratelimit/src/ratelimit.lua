-- lumyx-ratelimit: both policies of one key, decided atomically in one call.
-- The arithmetic mirrors src/policy.rs line by line (times in microseconds
-- since the Unix epoch; Lua numbers are exact integers up to 2^53).
--
-- KEYS[1]  the key's state, a hash: t = GCRA theoretical arrival time,
--          d = the UTC day (days since the epoch) that c counts, c = count,
--          and while the clock is more than a bucket behind t: b = the time
--          that was first seen, bt = the t of then.
-- KEYS[2]  optional: the key's usage counts, a hash: for the UTC day d in
--          slot s = d % 32, "s:day" = d and "s:<what>" its counts; all-time
--          "t:<what>"; "last" = the time of the last admission. <what> is
--          admitted, rate_limit_exceeded, daily_limit_exceeded or a refusal
--          code the caller gives. The script touches no other key.
-- ARGV[1]  rate_limit_per_minute   ARGV[2]  daily_limit
-- ARGV[3]  1 to decide (and consume if admitted), 0 to peek
-- ARGV[4]  the caller's deadline in Redis's clock (µs); 0 for none. A call
--          that runs later changes nothing: its caller has given up on it.
-- ARGV[5]  "now" in microseconds, replacing Redis's TIME for the decision
--          (tests only; the deadline is always checked against TIME), or ''
-- ARGV[6]  what to count in KEYS[2]: '' nothing, 'decision' what this
--          decision came to, else that name (with a peek, for a refusal made
--          before the limits)
--
-- Returns {code, debt, count, now, redis_now, since}: code -1 too late
-- (nothing done), 0 admitted, 1 minute denied, 2 day denied, 3 both; debt
-- (µs) and count as left by the call; now the effective time of the
-- decision; redis_now Redis's TIME; since the start of a clock step back
-- the key is waiting out (then debt is a full bucket), else -1.

if redis.replicate_commands then redis.replicate_commands() end

local time = redis.call('TIME')
local redis_now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local deadline = tonumber(ARGV[4])
if deadline > 0 and redis_now > deadline then
  return {-1, 0, 0, redis_now, redis_now, -1}
end

local rpm = tonumber(ARGV[1])
local daily = tonumber(ARGV[2])
local consume = ARGV[3] == '1'
local now = redis_now
if ARGV[5] ~= nil and ARGV[5] ~= '' then now = tonumber(ARGV[5]) end

local day_micros = 86400000000
local interval = math.floor(60000000 / rpm)
local capacity = interval * rpm

local state = redis.call('HMGET', KEYS[1], 't', 'd', 'c', 'b', 'bt')
local tat = tonumber(state[1]) or 0
local day = tonumber(state[2]) or 0
local count = tonumber(state[3]) or 0
local since = tonumber(state[4])
local since_tat = tonumber(state[5])

-- A clock that stepped back never takes the key to an earlier day: the
-- effective time is at least the start of the stored day.
if now < day * day_micros then now = day * day_micros end
local today = math.floor(now / day_micros)
if day < today then count = 0 end

-- Usage counts (KEYS[2]) for the effective day.
local function add_usage(what)
  local slot = today % 32
  if tonumber(redis.call('HGET', KEYS[2], slot .. ':day')) ~= today then
    local old = redis.call('HKEYS', KEYS[2])
    for _, field in ipairs(old) do
      if string.sub(field, 1, string.len(slot) + 1) == slot .. ':' then
        redis.call('HDEL', KEYS[2], field)
      end
    end
    redis.call('HSET', KEYS[2], slot .. ':day', string.format('%d', today))
  end
  redis.call('HINCRBY', KEYS[2], slot .. ':' .. what, 1)
  redis.call('HINCRBY', KEYS[2], 't:' .. what, 1)
  if what == 'admitted' then
    redis.call('HSET', KEYS[2], 'last', string.format('%d', now))
  end
end

local tally = ARGV[6] or ''
local function count_outcome(code)
  if tally == 'decision' then
    if code == 0 then add_usage('admitted')
    elseif code == 1 then add_usage('rate_limit_exceeded')
    else add_usage('daily_limit_exceeded') end
  elseif tally ~= '' then
    add_usage(tally)
  end
end


local debt = tat - now
if debt < 0 then debt = 0 end
local changed = false

-- More than a minute of debt, more than any bucket holds: the clock is
-- behind the key's state (it stepped back). Nothing is given back: the key
-- is refused until a full bucket of the clock's own time has passed since
-- this was first seen.
if debt > 60000000 then
  if since == nil or since_tat ~= tat or since > now then since = now end
  if now - since < capacity then
    local code = 1
    if count >= daily then code = 3 end
    if consume and (tonumber(state[4]) ~= since or since_tat ~= tat) then
      redis.call('HSET', KEYS[1], 'b', string.format('%d', since), 'bt', string.format('%d', tat))
    end
    count_outcome(code)
    return {code, capacity, count, now, redis_now, since}
  end
  -- The bucket has refilled in the clock's own time since `since`.
  tat = since + capacity
  debt = 0
  changed = true
elseif consume and state[4] then
  -- The clock is back: the record of the step back no longer stands.
  redis.call('HDEL', KEYS[1], 'b', 'bt')
end

local code = 0
if debt + interval > capacity then code = code + 1 end
if count >= daily then code = code + 2 end

-- The state lives until a minute past the next UTC midnight: by then the
-- count is from a past day and the bucket (at most a minute of debt) is full.
local function write(new_tat, new_day, new_count)
  redis.call('HSET', KEYS[1], 't', string.format('%d', new_tat),
    'd', string.format('%d', new_day), 'c', string.format('%d', new_count))
  if state[4] then redis.call('HDEL', KEYS[1], 'b', 'bt') end
  redis.call('PEXPIRE', KEYS[1],
    string.format('%d', math.ceil((day_micros - now % day_micros) / 1000) + 60000))
end

if consume then
  if code == 0 then
    debt = debt + interval
    count = count + 1
    write(now + debt, today, count)
  elseif changed then
    write(tat, day, count)
  end
end

count_outcome(code)
return {code, debt, count, now, redis_now, -1}
