/** `npm run migration:run`: applies pending migrations to DATABASE_URL and exits. */
import { loadConfigFromProcess } from '@porpoise/common';
import { runMigrations } from '../migration-runner';

async function main(): Promise<void> {
  const config = loadConfigFromProcess('standalone');
  if (!config.databaseUrl) {
    process.stderr.write(
      'porpoise migrate: invalid configuration: DATABASE_URL: required (a postgres:// URL)\n',
    );
    process.exit(78);
  }
  const { applied } = await runMigrations(config.databaseUrl);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
}

main().catch((err: Error) => {
  process.stderr.write(`porpoise migrate: ${err.message}\n`);
  process.exit(1);
});
