-- wrk script of scripts/bench_writes.sh: PATCH /conversations/:id with an id drawn
-- uniformly from [min, max] (or always `fixed`), the bodies in turn
-- {"status":"open"}, {"unread_count":0}, {"assigned_user_id":<a seeded agent>}.
--   wrk ... -s scripts/bench_writes.lua URL -- MIN MAX AGENT_IDS(comma-separated) [FIXED]
-- Authorization and Content-Type come from wrk's -H.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  lo, hi = tonumber(args[1]), tonumber(args[2])
  agents = {}
  for a in string.gmatch(args[3] or "", "%d+") do agents[#agents + 1] = a end
  fixed = args[4]
  math.randomseed(os.time() * 100 + (tid or 0))
  n = 0
end

function request()
  n = n + 1
  local id = fixed or math.random(lo, hi)
  local k = n % 3
  local body
  if k == 0 then
    body = '{"status":"open"}'
  elseif k == 1 then
    body = '{"unread_count":0}'
  else
    body = '{"assigned_user_id":' .. agents[math.random(#agents)] .. '}'
  end
  return wrk.format("PATCH", "/conversations/" .. id, nil, body)
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format("requests: %d in %.1f s: %.0f/s; p50 %.2f ms, p99 %.2f ms; non-2xx: %d; socket errors: %d\n",
    summary.requests, s, summary.requests / s, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
