#!/usr/bin/env python3
"""Labelled evaluation set for warden's secret rules.

Writes OUT/samples/NNNNN.<ext> (one file per sample, in a realistic context: Python, .env,
YAML, JSON, TypeScript, shell) and OUT/labels.json mapping each file to the rule id that
must fire (`scan.secret.<provider>`) or null for decoys that must not fire.

Every credential is generated here, well-formed for its provider's published format, from
a seeded RNG: nothing is real, nothing is downloaded. Decoys are the things agent
repositories are full of that look like secrets and are not: placeholders, environment
references, documentation example keys, hashes, UUIDs, lockfile integrity strings, model
names, URLs without passwords, low-entropy prefixed strings.

Usage: generate.py OUT [--per-rule N] [--seed S]
"""

import argparse
import base64
import json
import os
import random
import string

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


def rs(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pem(rng, kind="RSA PRIVATE KEY", escaped=False):
    body = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(rng.choice([600, 900, 1190])))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    nl = "\\n" if escaped else "\n"
    return f"-----BEGIN {kind}-----{nl}" + nl.join(lines) + f"{nl}-----END {kind}-----{nl}"


# Each generator returns (value, default variable name).
def gen_openai(rng):
    v = "sk-proj-" + rs(rng, URLSAFE, 74) + "T3BlbkFJ" + rs(rng, URLSAFE, 74) if rng.random() < 0.7 \
        else "sk-" + rs(rng, ALNUM, 20) + "T3BlbkFJ" + rs(rng, ALNUM, 20)
    return v, "OPENAI_API_KEY"


def gen_anthropic(rng):
    return "sk-ant-api03-" + rs(rng, URLSAFE, 93) + "AA", "ANTHROPIC_API_KEY"


def gen_huggingface(rng):
    return "hf_" + rs(rng, string.ascii_letters, 34), "HF_TOKEN"


def gen_google(rng):
    return "AIza" + rs(rng, URLSAFE, 35), "GOOGLE_API_KEY"


def gen_azure(rng):
    return rs(rng, HEX, 32), rng.choice(["AZURE_OPENAI_API_KEY", "azure_openai_key", "AZURE_OPENAI_KEY"])


def gen_cohere(rng):
    return rs(rng, ALNUM, 40), rng.choice(["COHERE_API_KEY", "cohere_api_key", "CO_API_KEY"])


def gen_mistral(rng):
    return rs(rng, ALNUM, 32), rng.choice(["MISTRAL_API_KEY", "mistral_api_key"])


def gen_groq(rng):
    return "gsk_" + rs(rng, ALNUM, 52), "GROQ_API_KEY"


def gen_replicate(rng):
    return "r8_" + rs(rng, ALNUM, 37), "REPLICATE_API_TOKEN"


def gen_pinecone(rng):
    if rng.random() < 0.7:
        return "pcsk_" + rs(rng, ALNUM, 5) + "_" + rs(rng, ALNUM, 63), "PINECONE_API_KEY"
    u = rs(rng, HEX, 32)
    return f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}", "PINECONE_API_KEY"


def gen_langsmith(rng):
    return f"lsv2_{rng.choice(['pt', 'sk'])}_{rs(rng, HEX, 32)}_{rs(rng, HEX, 10)}", "LANGSMITH_API_KEY"


def gen_aws(rng):
    if rng.random() < 0.5:
        return rng.choice(["AKIA", "ASIA"]) + rs(rng, string.ascii_uppercase + "234567", 16), "AWS_ACCESS_KEY_ID"
    return rs(rng, ALNUM + "/+", 40), "AWS_SECRET_ACCESS_KEY"


def gen_github(rng):
    if rng.random() < 0.75:
        return rng.choice(["ghp", "gho", "ghs", "ghu"]) + "_" + rs(rng, ALNUM, 36), "GITHUB_TOKEN"
    return "github_pat_" + rs(rng, ALNUM, 22) + "_" + rs(rng, ALNUM, 59), "GITHUB_TOKEN"


def gen_gitlab(rng):
    return "glpat-" + rs(rng, URLSAFE, 20), "GITLAB_TOKEN"


def gen_slack(rng):
    if rng.random() < 0.7:
        return f"xox{rng.choice('bp')}-{rs(rng, string.digits, 12)}-{rs(rng, string.digits, 13)}-{rs(rng, ALNUM, 24)}", "SLACK_BOT_TOKEN"
    return (f"https://hooks.slack.com/services/T{rs(rng, string.ascii_uppercase + string.digits, 10)}"
            f"/B{rs(rng, string.ascii_uppercase + string.digits, 10)}/{rs(rng, ALNUM, 24)}"), "SLACK_WEBHOOK_URL"


def gen_stripe(rng):
    return rng.choice(["sk_live_", "rk_live_"]) + rs(rng, ALNUM, rng.choice([24, 99])), "STRIPE_SECRET_KEY"


def gen_twilio(rng):
    return "SK" + rs(rng, HEX, 32), "TWILIO_API_KEY"


def gen_sendgrid(rng):
    return "SG." + rs(rng, URLSAFE, 22) + "." + rs(rng, URLSAFE, 43), "SENDGRID_API_KEY"


def gen_dburl(rng):
    scheme = rng.choice(["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp", "postgresql+asyncpg"])
    pw = rs(rng, ALNUM + "!*~", rng.randint(12, 28))
    host = rng.choice(["db.internal.acme.example", "10.0.3.17", "prod-cluster.abc123.us-east-1.rds.amazonaws.com"])
    return f"{scheme}://{rng.choice(['app', 'svc_agent', 'admin'])}:{pw}@{host}:5432/{rng.choice(['app', 'crm', 'ledger'])}", "DATABASE_URL"


def gen_jwt(rng):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": rs(rng, HEX, 12), "iat": rng.randint(1.6e9, 1.8e9), "role": "service"}).encode())
    return f"{header}.{payload}.{b64url(bytes(rng.getrandbits(8) for _ in range(32)))}", "AUTH_JWT"


def gen_generic(rng):
    name = rng.choice(["SESSION_SECRET", "WEBHOOK_SIGNING_SECRET", "internal_api_key", "ENCRYPTION_SECRET",
                       "client_secret", "db_password", "ADMIN_PASSWORD", "crm_api_token"])
    v = rs(rng, ALNUM, rng.randint(20, 40))
    while not (any(c.isdigit() for c in v) and any(c.isalpha() for c in v)):
        v = rs(rng, ALNUM, rng.randint(20, 40))
    return v, name


GENERATORS = {
    "openai": gen_openai, "anthropic": gen_anthropic, "huggingface": gen_huggingface,
    "google-ai": gen_google, "azure-openai": gen_azure, "cohere": gen_cohere, "mistral": gen_mistral,
    "groq": gen_groq, "replicate": gen_replicate, "pinecone": gen_pinecone, "langsmith": gen_langsmith,
    "aws": gen_aws, "github": gen_github, "gitlab": gen_gitlab, "slack": gen_slack, "stripe": gen_stripe,
    "twilio": gen_twilio, "sendgrid": gen_sendgrid, "database-url": gen_dburl, "jwt": gen_jwt,
    "generic": gen_generic,
}


def render(rng, name, value):
    """A file around one assignment, in one of several languages."""
    style = rng.choice(["py", "env", "yaml", "json", "ts", "sh"])
    pre = rng.choice(["", "import os\nimport logging\n\nlog = logging.getLogger(__name__)\n\n"])
    if style == "py":
        return "py", f'{pre}{name} = "{value}"\nclient = make_client(api_key={name})\n'
    if style == "env":
        return "env", f"# service config\nLOG_LEVEL=info\n{name}={value}\nPORT=8080\n"
    if style == "yaml":
        return "yaml", f"service:\n  name: agent\n  {name.lower()}: \"{value}\"\n  timeout: 30\n"
    if style == "json":
        return "json", json.dumps({"name": "agent", name: value, "retries": 3}, indent=2) + "\n"
    if style == "ts":
        return "ts", f'const {name} = "{value}";\nexport const client = new Client({{ apiKey: {name} }});\n'
    return "sh", f"#!/bin/sh\nexport {name}=\"{value}\"\nexec python -m agent\n"


def positive(rng, rule):
    if rule == "gcp-service-account":
        doc = {
            "type": "service_account", "project_id": f"acme-agents-{rs(rng, string.digits, 6)}",
            "private_key_id": rs(rng, HEX, 40), "private_key": "PEM",
            "client_email": f"agent@acme-agents.iam.gserviceaccount.com", "client_id": rs(rng, string.digits, 21),
            "token_uri": "https://oauth2.googleapis.com/token",
        }
        text = json.dumps(doc, indent=2).replace('"PEM"', json.dumps(pem(rng, "PRIVATE KEY")))
        return "json", text + "\n"
    if rule == "private-key":
        kind = rng.choice(["RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY"])
        if rng.random() < 0.5:
            return "pem", pem(rng, kind)
        return "py", f'SIGNING_KEY = """{pem(rng, kind)}"""\n'
    value, name = GENERATORS[rule](rng)
    if rule in ("azure-openai", "cohere", "mistral", "generic") or (rule == "aws" and not value.startswith(("AKIA", "ASIA"))) \
            or (rule == "pinecone" and not value.startswith("pcsk_")):
        # Context-dependent formats: the variable name is part of what identifies them.
        return render(rng, name, value)
    if rule == "database-url" and rng.random() < 0.3:
        return "py", f'engine = create_engine("{value}", pool_size=5)\n'
    if rule in ("anthropic", "openai") and rng.random() < 0.3:
        cls = "Anthropic" if rule == "anthropic" else "OpenAI"
        return "py", f'from x import {cls}\nclient = {cls}(api_key="{value}")\n'
    return render(rng, rng.choice([name, "api_key", "key", "token", "credential"]), value)


def decoy(rng):
    u = rs(rng, HEX, 32)
    uuid = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
    choices = [
        lambda: ("py", 'client = Anthropic(api_key=os.environ["ANTHROPIC_API_KEY"])\n'),
        lambda: ("py", 'OPENAI_API_KEY = os.getenv("OPENAI_API_KEY", "")\n'),
        lambda: ("env", "OPENAI_API_KEY=sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"),
        lambda: ("env", "ANTHROPIC_API_KEY=your-anthropic-api-key\n"),
        lambda: ("md", "Set `ANTHROPIC_API_KEY=sk-ant-api03-...` in your shell before running.\n"),
        lambda: ("yaml", "env:\n  GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n"),
        lambda: ("yaml", "token: ${env:SLACK_BOT_TOKEN}\napi_key: ${file:/run/secrets/crm}\n"),
        lambda: ("json", json.dumps({"mcpServers": {"gh": {"command": "npx", "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}}}) + "\n"),
        lambda: ("ini", "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"),
        lambda: ("py", f'REQUEST_ID = "{uuid}"\n'),
        lambda: ("py", f'idempotency_key = "{uuid}"\n'),
        lambda: ("py", f'commit = "{rs(rng, HEX, 40)}"\n'),
        lambda: ("json", json.dumps({"integrity": "sha512-" + base64.b64encode(bytes(rng.getrandbits(8) for _ in range(64))).decode()}) + "\n"),
        lambda: ("py", f'EXPECTED_SHA256 = "{rs(rng, HEX, 64)}"\n'),
        lambda: ("py", 'model = "claude-sonnet-4-5-20250929"\nfallback = "gpt-4.1-mini"\n'),
        lambda: ("py", 'DATABASE_URL = "postgresql://app@db.internal:5432/app"\n'),
        lambda: ("py", 'DATABASE_URL = f"postgresql://app:{os.environ[\'PGPASSWORD\']}@db:5432/app"\n'),
        lambda: ("env", "DATABASE_URL=postgres://user:password@localhost:5432/dev\n"),
        lambda: ("env", "REDIS_URL=redis://localhost:6379/0\n"),
        lambda: ("py", 'token = request.headers["Authorization"].removeprefix("Bearer ")\n'),
        lambda: ("py", 'SECRET_KEY_FILE = "/run/secrets/django_secret_key"\n'),
        lambda: ("py", 'password_hash = "$2b$12$' + rs(rng, ALNUM + "./", 53) + '"\n'),
        lambda: ("py", 'token_type = "authorization_code"\nauth_url = "https://login.acme.example/oauth2/authorize"\n'),
        lambda: ("ts", 'const apiKey = process.env.OPENAI_API_KEY ?? "";\n'),
        lambda: ("ts", 'const header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";\n'),
        lambda: ("py", 'from huggingface_hub import hf_hub_download\npath = hf_hub_download("org/model", "config.json")\n'),
        lambda: ("md", "GitHub tokens look like `ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX`.\n"),
        lambda: ("py", 'slack_channel = "C0123456789"\nuser = "U024BE7LH"\n'),
        lambda: ("py", f'cache_key = "agent:{rs(rng, string.digits, 6)}:profile"\n'),
        lambda: ("html", '<img src="data:image/png;base64,' + base64.b64encode(bytes(rng.getrandbits(8) for _ in range(600))).decode() + '">\n'),
        lambda: ("py", f'TRACE_ID = "{rs(rng, HEX, 32)}"\n'),
        lambda: ("py", 'API_KEY_HEADER = "X-Api-Key"\nTOKEN_ENV_VAR = "ACME_CRM_TOKEN"\n'),
        lambda: ("py", 'password = getpass.getpass("Password: ")\n'),
        lambda: ("py", 'client_secret = settings.OAUTH_CLIENT_SECRET\n'),
        lambda: ("ts", 'const token = await getToken({ scope: "api://acme/.default" });\n'),
        lambda: ("py", 'PINECONE_INDEX = "support-tickets-prod"\nPINECONE_ENV = "us-east-1-aws"\n'),
        lambda: ("py", f'PINECONE_INDEX_ID = "{uuid}"\n'),
        lambda: ("yaml", "model: mistral-large-latest\nprovider: mistral\n"),
        lambda: ("py", f'user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"\n'),
        lambda: ("py", f'sk = "{rs(rng, HEX, 16)}"  # short hex\n'),
        lambda: ("txt", "SKU: SK" + rs(rng, "0123456789", 8) + "\n"),
        lambda: ("py", f'SESSION_COOKIE_NAME = "sessionid"\nCSRF_TOKEN_LENGTH = 32\n'),
        lambda: ("lock", f'name = "anthropic"\nversion = "0.54.0"\nhash = "sha256:{rs(rng, HEX, 64)}"\n'),
        lambda: ("py", 'secret = "changeme-changeme-2024"\n'),
        lambda: ("py", f'_API_SECRET = "secret_valid_token_{rs(rng, string.digits, 6)}"\n'),
        lambda: ("py", 'url = "postgresql+psycopg2://langchain:langchain@localhost:6023/langchain"\n'),
        lambda: ("py", 'STRIPE_KEY = "sk_live_' + "X" * 24 + '"\n'),
    ]
    return rng.choice(choices)()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--per-rule", type=int, default=40)
    ap.add_argument("--decoys", type=int, default=800)
    ap.add_argument("--seed", type=int, default=20261123)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    samples = os.path.join(a.out, "samples")
    os.makedirs(samples, exist_ok=True)
    for f in os.listdir(samples):
        os.remove(os.path.join(samples, f))
    rules = list(GENERATORS) + ["gcp-service-account", "private-key"]
    items = [("scan.secret." + r, positive(rng, r)) for r in rules for _ in range(a.per_rule)]
    items += [(None, decoy(rng)) for _ in range(a.decoys)]
    rng.shuffle(items)
    labels = {}
    for i, (label, (ext, text)) in enumerate(items):
        name = f"{i:05d}.{ext}" if ext != "env" else f"{i:05d}.env"
        with open(os.path.join(samples, name), "w") as fh:
            fh.write(text)
        labels[name] = label
    with open(os.path.join(a.out, "labels.json"), "w") as fh:
        json.dump(labels, fh, indent=0, sort_keys=True)
    pos = sum(1 for v in labels.values() if v)
    print(f"wrote {len(labels)} samples ({pos} secrets of {len(rules)} rules, {len(labels) - pos} decoys) to {samples}")


if __name__ == "__main__":
    main()
