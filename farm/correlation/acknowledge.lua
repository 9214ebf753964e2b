-- Acknowledge a firing incident by hand (farm incidents acknowledge). An acknowledged incident
-- stays open: alerts still join it and it still resolves by its rule's resolve_on.
return by_hand(function(inc)
  if inc.status ~= 'firing' then return false end
  inc.status = 'acknowledged'
  return true
end)
