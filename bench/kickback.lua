-- Each request a different payment notice (unique gid), as a kickback storm would be.
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/kickback?gid=" .. (800000000000 + n) ..
    "&rst=1&ap=000001&ec=&god=" .. n .. "&cod=bench-" .. n .. "&am=1000&tx=0&sf=0&ta=1000")
end
