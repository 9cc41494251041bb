-- wrk script of scripts/bench_signing.sh: POST /s3-url-signing for a conversation
-- drawn uniformly from [min, max], a 100 KB JPEG with a new name each time.
--   wrk ... -s scripts/bench_signing.lua URL -- MIN MAX
-- Authorization and Content-Type come from wrk's -H.
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  lo, hi = tonumber(args[1]), tonumber(args[2])
  math.randomseed(os.time() * 100 + (tid or 0))
  n = 0
end

function request()
  n = n + 1
  local body = string.format(
    '{"conversation_id":%d,"file_name":"photo-%d-%d.jpg","file_type":"image/jpeg","file_size":100000}',
    math.random(lo, hi), tid or 0, n)
  return wrk.format("POST", "/s3-url-signing", nil, body)
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format("requests: %d in %.1f s: %.0f/s; p50 %.2f ms, p99 %.2f ms; non-2xx: %d; socket errors: %d\n",
    summary.requests, s, summary.requests / s, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
