-- wrk script: POST /v1/orders with a JWT and a unique Idempotency-Key per request.
-- Arguments (after --): run id, sku, then tokens used in turn (one customer each,
-- so the gateway's per-client rate limit is not what is measured).
local run, sku, tokens = "run", "BENCH-NONE", {}
local thread_id, counter = 0, 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  run = args[1] or run
  sku = args[2] or sku
  for i = 3, #args do tokens[#tokens + 1] = args[i] end
  wrk.method = "POST"
  wrk.body = '{"items":[{"sku":"' .. sku .. '","quantity":1}],'
    .. '"payment":{"method":"card","token":"tok_ok"}}'
end

function request()
  counter = counter + 1
  local headers = {
    ["Idempotency-Key"] = run .. "-" .. thread_id .. "-" .. counter,
    ["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1],
    ["Content-Type"] = "application/json",
  }
  return wrk.format(nil, nil, headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
