-- A change's audit insert does as little as it can (docs/audit.md, "Sealing"):
-- the chain's uniqueness is needed only among sealed entries, so unsealed inserts
-- skip that index; and the entry no longer takes a KEY SHARE lock on its community's
-- row through a foreign key: concurrent changes of one community shared that lock
-- through a multixact on every insert. Communities are never deleted (they are
-- deactivated), and every entry is written through a transaction scoped to its
-- community, whose row-level security (WITH CHECK) already ties it to that community.
alter table audit_log drop constraint audit_log_community_id_seq_key;
create unique index audit_log_chain on audit_log (community_id, seq) where seq is not null;
alter table audit_log drop constraint audit_log_community_id_fkey;
