import { spawn } from "node:child_process";
import { Command } from "commander";
import type { JobCard } from "../root/fleet/job-card.js";
import { formatJobCard } from "../root/fleet/job-card-text.js";
import { intOption } from "./cli-errors.js";
import { fetchCard, rootsFrom } from "./job-report-command.js";
import { subcommand } from "./subcommand.js";

/** Slurm's mail types after which a job has a card to send (its end, however it ended). */
const END_TYPES = /^(END|FAIL|TIME_LIMIT|REQUEUE|INVALID_DEPEND|STAGE_OUT|ARRAY_TASKS)/i;

/**
 * `banyan job mail`, Slurm's MailProg: `-s <subject> <recipient>` as slurmctld calls its mail program,
 * the job in its environment (SLURM_JOB_ID, SLURM_JOB_MAIL_TYPE). Slurm's own mail is always sent;
 * at a job's end the job's report card is appended (waited for up to --wait-ms while the roots make
 * its verdict). Through the local sendmail (`sendmail -t -i`): exits with sendmail's status.
 */
export function jobMailCommand(): Command {
  return subcommand("mail")
    .description("Slurm's MailProg: send Slurm's mail with the job's report card appended at its end (through sendmail)")
    .option("-s, --subject <subject>", "the subject (as Slurm gives it)", "")
    .argument("<recipient...>", "who gets it (as Slurm gives it: the job's --mail-user, else its user)")
    .option("--sendmail <path>", "the sendmail program (default: $BANYAN_SENDMAIL, else /usr/sbin/sendmail)")
    .option("--root <host:port>", "a root's HTTP address (repeatable; default: every root of --topology)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--topology <file>", "the topology, for its roots' addresses (default: $BANYAN_TOPOLOGY, else /etc/banyan/topology.json)")
    .option("--wait-ms <ms>", "how long to wait for the job's verdict after its end", intOption(0, 600_000), 20_000)
    .addHelpText(
      "after",
      `
In slurm.conf on the controller: MailProg=/usr/bin/banyan-mail (a two-line script running
\`banyan job mail "$@"\`; deploy/slurm/mailprog). slurmctld calls it as its mail program with
SLURM_JOB_ID and SLURM_JOB_MAIL_TYPE set: a begin mail goes as it is; an end (END, FAIL, TIME_LIMIT,
…) gets the card as \`banyan job report\` prints it. Whatever happens to the card, Slurm's mail is sent.

Example:
  SLURM_JOB_ID=4242 SLURM_JOB_MAIL_TYPE=END banyan job mail -s "Slurm Job_id=4242 Ended" alice`,
    )
    .action(async (recipients: string[], flags: { subject: string; sendmail?: string; root: string[]; topology?: string; waitMs: number }) => {
      const env = process.env;
      const jobId = env["SLURM_JOB_ID"] ?? /Job_id=(\d+(?:_\d+)?)/.exec(flags.subject)?.[1];
      const type = env["SLURM_JOB_MAIL_TYPE"] ?? (/\bEnded\b|\bFailed\b/.test(flags.subject) ? "END" : "");
      let appended = "";
      if (jobId !== undefined && END_TYPES.test(type)) {
        try {
          const roots = flags.root.length > 0 ? flags.root : rootsFrom(flags.topology);
          const card = await endedCard(roots, jobId, flags.waitMs);
          appended = `\n${formatJobCard(card)}`;
        } catch (err) {
          appended = `\n(No report card for job ${jobId}: ${(err as Error).message.split("\n")[0]})\n`;
        }
      }
      const status = await sendmail(flags.sendmail ?? env["BANYAN_SENDMAIL"] ?? "/usr/sbin/sendmail", message(recipients, flags.subject, appended));
      process.exit(status);
    });
}

/** The card once the job has ended (its verdict kept), or the latest one when the wait is over. */
async function endedCard(roots: readonly string[], jobId: string, waitMs: number): Promise<JobCard> {
  const until = Date.now() + waitMs;
  for (;;) {
    let card: JobCard | null = null;
    try {
      card = await fetchCard(roots, jobId, 5000);
    } catch (err) {
      if (Date.now() >= until) throw err;
    }
    if (card !== null && (card.state === "ended" || Date.now() >= until)) return card;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** An RFC 5322 message for `sendmail -t`: Slurm's subject and recipients, the card as its body. */
export function message(to: readonly string[], subject: string, body: string): string {
  const header = (s: string): string => s.replace(/[\r\n]+/g, " ");
  return `To: ${to.map(header).join(", ")}\nSubject: ${header(subject)}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${body}`;
}

function sendmail(program: string, text: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(program, ["-t", "-i"], { stdio: ["pipe", "inherit", "inherit"] });
    child.on("error", (err) => {
      process.stderr.write(`banyan job mail: ${program}: ${err.message}\n`);
      resolve(1);
    });
    child.on("exit", (code) => resolve(code ?? 1));
    child.stdin.end(text);
  });
}
