"""Team labeling: users and roles, leases, overlap, agreement, review and the history."""
