"""refund-agent: decides and issues customer refunds (OpenAI Agents SDK, gpt-4.1).

Every refund goes through the gateway's `payments.issue_refund`, which Cedar policy holds
for finance approval above the limit.
"""

import os

from agents import Agent, Runner, function_tool

from .gateway import call_tool

os.environ.setdefault("OPENAI_API_KEY", os.environ.get("ACME_OPENAI_KEY", ""))


@function_tool
def lookup_order(order_id: str) -> dict:
    """Fetch an order from the CRM."""
    return call_tool("crm.read_order", {"order_id": order_id})


@function_tool
def issue_refund(order_id: str, amount: float, reason: str) -> dict:
    """Refund part or all of an order. Irreversible; may wait for human approval."""
    return call_tool("payments.issue_refund", {"order_id": order_id, "amount": amount, "reason": reason})


refund_agent = Agent(
    name="refund-agent",
    model="gpt-4.1",
    instructions=(
        "You handle refund requests handed off by support triage. Look up the order, "
        "check the refund policy (30 days, unused), then issue the refund or explain why not."
    ),
    tools=[lookup_order, issue_refund],
)


def handle(ticket_id: str, customer_id: str, refund_amount: float) -> str:
    result = Runner.run_sync(
        refund_agent,
        f"Ticket {ticket_id}: customer {customer_id} asks for a refund of {refund_amount} EUR.",
    )
    return result.final_output
