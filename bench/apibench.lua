-- wrk script for bench/apibench.py: GET /api/v1/count for each query of QUERIES_FILE in turn, with the
-- officer's token; non-200 answers are counted; at the end, one line of figures for apibench.py.
local queries, n, bad = {}, 0, 0
local token = os.getenv("MV_TOKEN")

local function urlencode(s)
	return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

for line in io.lines(os.getenv("MV_QUERIES")) do
	if line ~= "" and line:sub(1, 1) ~= "#" then
		local mv = line:match("^([^\t]*)\t")
		table.insert(queries, "/api/v1/count?q=" .. urlencode(mv))
	end
end

request = function()
	n = n % #queries + 1
	return wrk.format("GET", queries[n], { ["Authorization"] = "Bearer " .. token })
end

response = function(status, headers, body)
	if status ~= 200 then
		bad = bad + 1
	end
end

done = function(summary, latency, requests)
	io.write(string.format("APIBENCH requests %d seconds %.3f p50_ms %.2f p95_ms %.2f errors %d\n",
		summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
		summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write +
		summary.errors.timeout))
end
