-- lumyx-ratelimit: both policies of one key, decided atomically in one call.
-- The arithmetic mirrors src/policy.rs line by line (times in microseconds
-- since the Unix epoch; Lua numbers are exact integers up to 2^53).
--
-- KEYS[1]  the key's state, a hash: t = GCRA theoretical arrival time,
--          d = the UTC day (days since the epoch) that c counts, c = count.
--          The script touches no other key.
-- ARGV[1]  rate_limit_per_minute   ARGV[2]  daily_limit
-- ARGV[3]  1 to decide (and consume if admitted), 0 to peek
-- ARGV[4]  optional: "now" in microseconds, replacing Redis's TIME (tests only)
--
-- Returns {code, debt, count, now}: code 0 admitted, 1 minute denied, 2 day
-- denied, 3 both; debt (µs) and count as left by the call; now the
-- effective time of the decision (see below).

if redis.replicate_commands then redis.replicate_commands() end

local rpm = tonumber(ARGV[1])
local daily = tonumber(ARGV[2])
local now
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local day_micros = 86400000000
local interval = math.floor(60000000 / rpm)
local capacity = interval * rpm

local state = redis.call('HMGET', KEYS[1], 't', 'd', 'c')
local tat = tonumber(state[1]) or 0
local day = tonumber(state[2]) or 0
local count = tonumber(state[3]) or 0

-- A clock that stepped back never takes the key to an earlier day: the
-- effective time is at least the start of the stored day.
if now < day * day_micros then now = day * day_micros end
local today = math.floor(now / day_micros)
if day < today then count = 0 end

-- A step back costs at most one full bucket.
local stored_debt = tat - now
local debt = stored_debt
if debt < 0 then debt = 0 end
if debt > capacity then debt = capacity end

local code = 0
if debt + interval > capacity then code = code + 1 end
if count >= daily then code = code + 2 end

-- The state lives until a minute past the next UTC midnight: by then the
-- count is from a past day and the bucket (at most a minute of debt) is full.
local function write(new_tat, new_day, new_count)
  redis.call('HSET', KEYS[1], 't', string.format('%d', new_tat),
    'd', string.format('%d', new_day), 'c', string.format('%d', new_count))
  redis.call('PEXPIRE', KEYS[1],
    string.format('%d', math.ceil((day_micros - now % day_micros) / 1000) + 60000))
end

if ARGV[3] == '1' then
  if code == 0 then
    debt = debt + interval
    count = count + 1
    write(now + debt, today, count)
  elseif stored_debt > debt then
    -- Denied with more than a full bucket of debt (the clock stepped back):
    -- keep only the full bucket. This gives back, never consumes.
    redis.call('HSET', KEYS[1], 't', string.format('%d', now + debt))
  end
end

return {code, debt, count, now}
