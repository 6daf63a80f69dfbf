// Starts fauxqs, the SQS-compatible stand-in of NetAuto's local stack, on 127.0.0.1.
// Usage: node server.mjs PORT   (0 picks a free port). Prints "listening <url>" once it accepts
// requests, and exits when stdin closes, so it never outlives the Go program that started it.
import { buildApp } from "fauxqs";

const port = Number(process.argv[2] ?? "0");
const app = buildApp({ logger: false, defaultRegion: process.env.AWS_REGION ?? "us-east-1" });
const url = await app.listen({ port, host: "127.0.0.1" });
process.stdout.write(`listening ${url}\n`);
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => app.close().finally(() => process.exit(0)));
}
