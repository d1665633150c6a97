-- Porpoise's database roles (DESIGN.md section 11), run once by the superuser when the database
-- is created (deploy/postgres/10-porpoise-roles.sh, from the postgres image's initdb hook):
--
--   porpoise_migrate  owns the schema: the one-shot `migrate` service runs the migrations as it.
--   porpoise_app      masters and API servers: reads and writes rows, never changes the schema.
--
-- Neither is a superuser, creates databases or roles. Workers get no database role at all (the
-- registry is ZooKeeper). Passwords come from the environment (\getenv), never a command line.
\set ON_ERROR_STOP on
\getenv migrate_password PORPOISE_MIGRATE_PASSWORD
\getenv app_password PORPOISE_APP_PASSWORD
\getenv database POSTGRES_DB

CREATE ROLE porpoise_migrate LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'migrate_password';
CREATE ROLE porpoise_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';

-- Only these two roles connect, and only the migration role creates anything.
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO porpoise_migrate, porpoise_app;
ALTER SCHEMA public OWNER TO porpoise_migrate;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO porpoise_app;

-- Whatever the migrations create from now on, the application may use, not alter or drop.
ALTER DEFAULT PRIVILEGES FOR ROLE porpoise_migrate IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO porpoise_app;
ALTER DEFAULT PRIVILEGES FOR ROLE porpoise_migrate IN SCHEMA public
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO porpoise_app;
ALTER DEFAULT PRIVILEGES FOR ROLE porpoise_migrate IN SCHEMA public
  GRANT EXECUTE ON FUNCTIONS TO porpoise_app;
