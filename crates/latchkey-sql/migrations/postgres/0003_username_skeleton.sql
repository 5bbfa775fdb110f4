-- The confusable skeleton (Unicode TS #39) of each username: a new name whose skeleton is an
-- existing account's is taken. Accounts made before this column existed get theirs at the next
-- start, oldest first; one whose skeleton another account already holds keeps NULL (never
-- changed, and listed by `latchkey user collisions`).
ALTER TABLE accounts ADD COLUMN skeleton TEXT;
CREATE UNIQUE INDEX accounts_skeleton ON accounts (skeleton);
