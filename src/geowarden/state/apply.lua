-- geowarden state: one batch of operations, run atomically (see geowarden/state/redisstore.py).
-- ARGV: now, MAX_PLACES, then each operation's fields; KEYS: each operation's keys, in order.
--   c <amount> <n> (<bucket> <key ttl>)*n                KEYS: ring per window
--   d <member> <n> <fmt> <key ttl> (<bucket> <key ttl> <base>)*n   KEYS: cache, current sketch per window
--   p <place> <ttl> <key ttl>                            KEYS: places
--   h <hour> <days> <key ttl>                            KEYS: hours
--   f <ttl> <key ttl>                                    KEYS: first seen
--   g                                                    KEYS: flags
--   P <code> <expires f64 + json> <key ttl>   (put_flag) KEYS: flags
local now, MAXP = tonumber(ARGV[1]), tonumber(ARGV[2])
local call, pack, unpack_s, floor = redis.call, struct.pack, struct.unpack, math.floor
local RING = '<' .. string.rep('I4d', 12)
local HOURS = '<I4I2' .. string.rep('I4', 48)
local res, a, ki = {}, 3, 1
while ARGV[a] do
  local op = ARGV[a]
  if op == 'c' then
    local amount, n = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local out = {}
    for j = 1, n do
      local key, b, ttl = KEYS[ki], tonumber(ARGV[a + 1 + 2 * j]), ARGV[a + 2 + 2 * j]
      ki = ki + 1
      local raw = call('GET', key)
      local t
      if raw and #raw == 144 then t = {unpack_s(RING, raw)} else t = {} for x = 1, 24 do t[x] = 0 end end
      local s = (b % 12) * 2 + 1
      local v = amount
      if t[s] == b then v = t[s + 1] + amount end
      local new = t[s] ~= b
      t[s], t[s + 1] = b, v
      local sum = 0
      for x = b - 11, b do
        local y = (x % 12) * 2 + 1
        if t[y] == x then sum = sum + t[y + 1] end
      end
      out[j] = string.format('%.17g', sum)
      if raw and #raw == 144 then
        call('SETRANGE', key, s * 6 - 6, pack('<I4d', b, v))
        if new then call('EXPIRE', key, ttl) end
      else
        call('SET', key, pack(RING, unpack(t, 1, 24)), 'EX', ttl)
      end
    end
    res[#res + 1] = out
    a = a + 3 + 2 * n
  elseif op == 'd' then
    local m, n, fmt, keep = ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3], ARGV[a + 4]
    local ck = KEYS[ki]
    ki = ki + 1
    local raw = call('GET', ck)
    local c
    if raw and #raw == 10 * n then c = {unpack_s(fmt, raw)} else c = {} for x = 1, 3 * n do c[x] = 0 end end
    local out, changed = {}, false
    for j = 1, n do
      local key, b, ttl, base = KEYS[ki], tonumber(ARGV[a + 2 + 3 * j]), ARGV[a + 3 + 3 * j], ARGV[a + 4 + 3 * j]
      ki = ki + 1
      local tag, cnt, mask = c[3 * j - 2], c[3 * j - 1], c[3 * j]
      local added = call('PFADD', key, m)
      if added == 1 then call('EXPIRE', key, ttl) end
      if added == 1 or tag ~= b then
        -- mask: bit i set when bucket b - i may hold members; the cache outlives every sketch
        if tag == 0 then mask = 0
        elseif b >= tag then
          if b - tag >= 12 then mask = 0 else mask = (mask * 2 ^ (b - tag)) % 4096 end
        else mask = 4095 end
        local fresh = added == 1 and mask % 2 == 0  -- this PFADD made bucket b: one member
        if mask % 2 == 0 then mask = mask + 1 end
        if mask == 1 and fresh then
          cnt = 1
        elseif mask == 1 then
          cnt = call('PFCOUNT', key)
        else
          local keys = {key}
          for x = 1, 11 do
            if floor(mask / 2 ^ x) % 2 == 1 then keys[#keys + 1] = base .. (b - x) end
          end
          cnt = call('PFCOUNT', unpack(keys))
        end
        c[3 * j - 2], c[3 * j - 1], c[3 * j] = b, cnt, mask
        changed = true
      end
      out[j] = cnt
    end
    if changed then call('SET', ck, pack(fmt, unpack(c, 1, 3 * n)), 'EX', keep) end
    res[#res + 1] = out
    a = a + 5 + 3 * n
  elseif op == 'p' then
    local place, ttl = ARGV[a + 1], tonumber(ARGV[a + 2])
    local key = KEYS[ki]
    ki = ki + 1
    local raw = call('HGETALL', key)
    local out, others, top = {}, 0, 0
    local old, oldts, oldseq = nil, 0, 0
    for j = 1, #raw, 2 do
      local f, v = raw[j], raw[j + 1]
      local ts, seq = unpack_s('<dd', v)
      if seq > top then top = seq end
      if ts > now - ttl then
        out[#out + 1] = f
        out[#out + 1] = v
      end
      if f ~= place then
        others = others + 1
        if old == nil or ts < oldts or (ts == oldts and seq < oldseq) then old, oldts, oldseq = f, ts, seq end
      end
    end
    if #raw > 0 and #out == 0 then
      call('DEL', key)
      others, top = 0, 0
    end
    call('HSET', key, place, pack('<dd', now, top + 1))
    if others >= MAXP then call('HDEL', key, old) end
    call('EXPIRE', key, ARGV[a + 3])
    res[#res + 1] = out
    a = a + 4
  elseif op == 'h' then
    local hs, days = ARGV[a + 1], tonumber(ARGV[a + 2])
    local key = KEYS[ki]
    ki = ki + 1
    local hour = tonumber(hs)
    local hod = hour % 24
    local first = (floor(hour / 24) - days + 1) * 24  -- the profile: from the oldest day's first hour
    local n = call('HINCRBY', key, hs, 1)
    if n == 1 then call('EXPIRE', key, ARGV[a + 3]) end
    local p = nil
    if n > 1 then
      local raw = call('HGET', key, 'P')
      if raw then
        p = {unpack_s(HOURS, raw)}
        if p[1] ~= first or p[2] ~= days then p = nil end
      end
    end
    if p then
      p[3 + hod] = p[3 + hod] + 1
      call('HSET', key, 'P', pack(HOURS, unpack(p, 1, 50)))
    else
      -- rebuild from the hourly counts (once an hour, or every time for a quiet name)
      p = {first, days}
      for x = 3, 50 do p[x] = 0 end
      local keep = math.min(first, hour - 23)
      local raw = call('HGETALL', key)
      local dead, hours, cached = {}, 0, false
      for j = 1, #raw, 2 do
        local x = tonumber(raw[j])
        if x == nil then cached = true
        elseif x < keep then dead[#dead + 1] = raw[j]
        else
          hours = hours + 1
          local h = x % 24
          if x >= first then p[3 + h] = p[3 + h] + tonumber(raw[j + 1]) end
          if x > p[27 + h] then p[27 + h] = x end
        end
      end
      if #dead > 0 then call('HDEL', key, unpack(dead)) end
      if hours > 24 then call('HSET', key, 'P', pack(HOURS, unpack(p, 1, 50)))
      elseif cached then call('HDEL', key, 'P') end
    end
    local out = {}
    local active = 0
    for h = 0, 23 do
      out[h + 1] = p[3 + h]
      local last = p[27 + h]
      if last > hour - 24 and last <= hour then active = active + 1 end
    end
    out[25] = active
    res[#res + 1] = out
    a = a + 4
  elseif op == 'f' then
    local key = KEYS[ki]
    ki = ki + 1
    local v = call('GET', key)
    if v == false or #v ~= 16 or select(2, unpack_s('<dd', v)) <= now then
      v = pack('<dd', now, now + tonumber(ARGV[a + 1]))
      call('SET', key, v, 'EX', ARGV[a + 2])
    end
    res[#res + 1] = v
    a = a + 3
  elseif op == 'g' then
    local key = KEYS[ki]
    ki = ki + 1
    local raw = call('HGETALL', key)
    local out, dead = {}, {}
    for j = 1, #raw, 2 do
      if unpack_s('<d', raw[j + 1]) > now then
        out[#out + 1] = raw[j]
        out[#out + 1] = raw[j + 1]
      else
        dead[#dead + 1] = raw[j]
      end
    end
    if #dead > 0 then call('HDEL', key, unpack(dead)) end
    res[#res + 1] = out
    a = a + 1
  elseif op == 'P' then
    local key = KEYS[ki]
    ki = ki + 1
    call('HSET', key, ARGV[a + 1], ARGV[a + 2])
    local ttl = tonumber(ARGV[a + 3])
    if call('TTL', key) < ttl then call('EXPIRE', key, ARGV[a + 3]) end
    res[#res + 1] = 1
    a = a + 4
  else
    return redis.error_reply('geowarden state: unknown operation ' .. tostring(op))
  end
end
return res
