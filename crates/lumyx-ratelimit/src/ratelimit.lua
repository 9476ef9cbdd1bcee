-- lumyx-ratelimit: both policies of one key, decided atomically in one call.
-- The arithmetic mirrors src/policy.rs (times in microseconds since the Unix
-- epoch; Lua numbers are exact integers up to 2^53).
--
-- KEYS[1]  the minute key: the GCRA theoretical arrival time
-- KEYS[2]  the day key's prefix; the UTC date (yyyymmdd) is appended. It shares
--          KEYS[1]'s {hash tag}, so both live in one cluster slot.
-- ARGV[1]  rate_limit_per_minute   ARGV[2]  daily_limit
-- ARGV[3]  1 to decide (and consume if admitted), 0 to peek
-- ARGV[4]  optional: "now" in microseconds, replacing Redis's TIME (tests only)
--
-- Returns {code, debt, count, now}: code 0 admitted, 1 minute denied, 2 day
-- denied, 3 both; debt (µs) and count as left by the call.

if redis.replicate_commands then redis.replicate_commands() end

local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d%02d%02d', y, m, d)
end

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
local day_key = KEYS[2] .. civil(math.floor(now / day_micros))

local debt = tonumber(redis.call('GET', KEYS[1]) or 0) - now
if debt < 0 then debt = 0 end
local count = tonumber(redis.call('GET', day_key) or 0)

local code = 0
if debt + interval > capacity then code = code + 1 end
if count >= daily then code = code + 2 end

if code == 0 and ARGV[3] == '1' then
  debt = debt + interval
  count = count + 1
  -- The minute key lives until its bucket is full again; the day key until
  -- a minute past the next UTC midnight.
  redis.call('SET', KEYS[1], string.format('%d', now + debt),
    'PX', string.format('%d', math.ceil(debt / 1000)))
  redis.call('SET', day_key, string.format('%d', count),
    'PX', string.format('%d', math.ceil((day_micros - now % day_micros) / 1000) + 60000))
end

return {code, debt, count, now}
