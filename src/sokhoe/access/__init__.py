"""Who may see what: principals, tokens, scopes, the policy every record access goes through,
and the audit log (the one door to records, DESIGN.md)."""
