-- Resolve one incident by hand (farm incidents resolve); one already resolved is saved as it is.
return by_hand(function(inc)
  if inc.status ~= 'resolved' then resolve(inc) end
  return true
end)
