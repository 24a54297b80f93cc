// coding-agent: fixes failing CI jobs in the monorepo (Claude Agent SDK, claude-opus-4-1).
//
// It is given a `shell` tool that runs whatever command the model asks for, in the checkout,
// with the developer's credentials. This is the risk `warden scan` reports.

import { exec, execSync } from "node:child_process";
import { query, tool, createSdkMcpServer } from "@anthropic-ai/claude-agent-sdk";
import { z } from "zod";

const shell = tool(
  "shell",
  "Run a shell command in the repository and return its output",
  { command: z.string() },
  async (input) => {
    const out = execSync(input.command, { encoding: "utf8", cwd: process.env.REPO_DIR });
    return { content: [{ type: "text", text: out }] };
  },
);

const tools = createSdkMcpServer({ name: "coding-tools", version: "1.0.0", tools: [shell] });

export async function fixBuild(failingJob: string): Promise<void> {
  for await (const message of query({
    prompt: `CI job ${failingJob} is failing. Find the cause and fix it.`,
    options: {
      model: "claude-opus-4-1",
      mcpServers: { "coding-tools": tools },
      allowedTools: ["mcp__coding-tools__shell"],
    },
  })) {
    if (message.type === "result") {
      console.log(message.result);
    }
  }
}

export function runHook(hook: string): void {
  exec(`sh -c ${hook}`, (err) => {
    if (err) console.error(err);
  });
}
