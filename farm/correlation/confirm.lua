-- Confirm a candidate incident by hand (farm incidents confirm). A rule with require_approve
-- makes candidates, which never become visible by themselves; confirming one makes it visible
-- (it stays a candidate, as in Keep).
return by_hand(function(inc)
  if inc.candidate ~= 1 then return false end
  inc.visible = 1
  return true
end)
