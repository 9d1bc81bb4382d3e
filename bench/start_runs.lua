-- wrk script: every request starts a run on a device of its own (POST /api/test-runs).
-- Each wrk thread walks the device ids of BENCH_DEVICES_FILE with the stride BENCH_STRIDE
-- from its own offset, so no device is asked for twice until the list wraps around.
local ids = {}
for line in io.lines(os.getenv("BENCH_DEVICES_FILE")) do
  ids[#ids + 1] = line
end

local stride = tonumber(os.getenv("BENCH_STRIDE"))
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
}
local prefix = '{"test_case_ids":["' .. os.getenv("BENCH_CASE") .. '"],"environment_id":"'
  .. os.getenv("BENCH_ENVIRONMENT") .. '","device_ids":["'

local threads = 0
function setup(thread)
  thread:set("offset", threads + tonumber(os.getenv("BENCH_OFFSET") or "0"))
  threads = threads + 1
end

local counter = 0
function request()
  counter = counter + 1
  local id = ids[((offset + counter * stride) % #ids) + 1]
  return wrk.format("POST", "/api/test-runs", headers, prefix .. id .. '"]}')
end
