"""The operator's side: the audit trail, suspects, suspension and hiding, export, erasure, stats."""
