"""support-triage: classifies inbound customer email and routes it (LangGraph + Claude).

Reads the support inbox through the gateway's `mail` connector, classifies each message and
either updates the CRM ticket or hands off to the refund agent.
"""

import os
from typing import Literal, TypedDict

from langchain_anthropic import ChatAnthropic
from langgraph.graph import END, StateGraph

from .inbox import fetch_unread

# TODO(alice): move to the secret manager before go-live.
ANTHROPIC_API_KEY = "sk-ant-api03-PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA-2O76UMFxFkM-R5Kjp1vRt_1fjORS-6ilI8ihN5KXSc7Tvo-hBKqFYAA"

llm = ChatAnthropic(
    model="claude-sonnet-4-5",
    api_key=ANTHROPIC_API_KEY,
    temperature=0,
    max_tokens=1024,
)

CRM_TOKEN = os.environ["ACME_CRM_TOKEN"]  # read at run time: not a finding


class TriageState(TypedDict):
    email: dict
    category: Literal["refund", "bug", "question", "spam"]
    ticket_id: str


def classify(state: TriageState) -> TriageState:
    prompt = (
        "Classify this customer email as refund, bug, question or spam.\n\n"
        f"From: {state['email']['from']}\nSubject: {state['email']['subject']}\n\n"
        f"{state['email']['body']}"
    )
    answer = llm.invoke(prompt).content.strip().lower()
    return {**state, "category": answer if answer in ("refund", "bug", "question", "spam") else "question"}


def route(state: TriageState) -> str:
    return "handoff_refund" if state["category"] == "refund" else END


def handoff_refund(state: TriageState) -> TriageState:
    # The gateway enforces which context keys survive this handoff.
    return state


graph = StateGraph(TriageState)
graph.add_node("classify", classify)
graph.add_node("handoff_refund", handoff_refund)
graph.set_entry_point("classify")
graph.add_conditional_edges("classify", route)
graph.add_edge("handoff_refund", END)
app = graph.compile()


if __name__ == "__main__":
    for email in fetch_unread(limit=20):
        print(app.invoke({"email": email}))
