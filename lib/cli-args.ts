/**
 * An entry point's command-line arguments, checked before anything runs: `--help` prints the
 * usage and exits 0; an argument the command does not take is one line naming it and exit 1, so a
 * typo (`--webonly`) or a flag it lacks (`--dry-run`) never runs the real thing unnoticed.
 *
 * @example const flags = readArgs('the migrations', 'npm run migrate', [], process.argv.slice(2))
 */
export function readArgs(
  role: string,
  usage: string,
  accepted: readonly { flag: string; description: string }[],
  argv: readonly string[],
): Set<string> {
  const text = [
    `Usage: ${usage}${accepted.map(({ flag }) => ` [${flag}]`).join('')}`,
    ...accepted.map(({ flag, description }) => `  ${flag}  ${description}`),
  ].join('\n');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${text}\n`);
    process.exit(0);
  }
  const unknown = argv.find((arg) => !accepted.some(({ flag }) => flag === arg));
  if (unknown !== undefined) {
    process.stderr.write(
      `Cannot start ${role}. Unknown argument ${JSON.stringify(unknown)}. ${text.replaceAll('\n', ' ')}\n`,
    );
    process.exit(1);
  }
  return new Set(argv);
}
