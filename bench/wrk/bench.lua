-- wrk script for bench/serve_bench.py: optional POST body from a file, and a one-line JSON
-- summary (exact latency percentiles and every error counter) for the Python side to parse.
--   WRK_BODY=<file>            POST this file's bytes (GET when unset)
--   WRK_CONTENT_TYPE=<type>    Content-Type of the body (default application/json)
--   WRK_HEADER_LENGTH=<n>      send Inference-Header-Content-Length: n (V2 binary tensor extension)
local body_file = os.getenv("WRK_BODY")
if body_file then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "application/json"
  local header_length = os.getenv("WRK_HEADER_LENGTH")
  if header_length then
    wrk.headers["Inference-Header-Content-Length"] = header_length
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
