-- wrk script: POST the files named in BODY_FILES (colon-separated), in turn, as FHIR JSON.
local bodies = {}
for name in string.gmatch(os.getenv("BODY_FILES"), "[^:]+") do
  local file = assert(io.open(name, "rb"))
  bodies[#bodies + 1] = file:read("*a")
  file:close()
end
local path = os.getenv("URL_PATH")
local headers = {["Content-Type"] = "application/fhir+json"}
local i = 0

request = function()
  i = i % #bodies + 1
  return wrk.format("POST", path, headers, bodies[i])
end
