//! Server-rendered pages. Everything interpolated goes through [`esc`].

use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_approval::{ApprovalRequest, diff_args};
use warden_core::Inventory;

use crate::Card;

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = r#"<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;justify-content:space-between;align-items:center}
header form{display:inline}
main{max-width:980px;margin:1rem auto;padding:0 1rem}
.approval{background:#fff;border:1px solid #d6d9e0;border-radius:6px;padding:1rem;margin:1rem 0}
.approval h3{margin:.2rem 0 .6rem}
.tag{display:inline-block;background:#eef;border-radius:3px;padding:0 .35rem;margin-right:.25rem;font-size:.85em}
.tag.risk{background:#fde2e1}
pre{background:#f0f2f5;padding:.6rem;overflow:auto;max-height:24rem}
table{border-collapse:collapse;font-size:.9em}td,th{border-bottom:1px solid #e3e5ea;padding:.2rem .5rem;text-align:left}
.warn{color:#a4161a}.ok{color:#2b7a0b}
textarea{width:100%;min-height:3rem}
button{padding:.4rem 1rem;margin-right:.5rem}
button.approve{background:#2b7a0b;color:#fff;border:0}button.deny{background:#a4161a;color:#fff;border:0}
.flash{background:#e6f4ea;padding:.5rem 1rem;border-radius:4px}
</style>"#;

fn shell(title: &str, header_right: &str, body: &str, script: bool) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>{STYLE}{}</head><body><header><strong>Warden</strong><span>{header_right}</span></header><main>{body}</main></body></html>",
        esc(title),
        if script {
            "<script src=\"/console/app.js\" defer></script>"
        } else {
            ""
        }
    )
}

/// A page with one message.
pub fn message(title: &str, text: &str) -> String {
    shell(
        title,
        "",
        &format!(
            "<h2 id=\"message-title\">{}</h2><p id=\"message\">{}</p><p><a href=\"/console/\">Back to pending approvals</a></p>",
            esc(title),
            esc(text)
        ),
        false,
    )
}

/// The login page.
pub fn login(csrf: &str, token: &str, error: Option<&str>) -> String {
    let err = match error {
        Some(_) => {
            "<p class=\"warn\" id=\"login-error\">That login token is unknown, expired or already used. Ask for a new one (<code>warden console login-token --as YOU</code>).</p>"
        }
        None => "",
    };
    shell(
        "Warden console: log in",
        "",
        &format!(
            "<h2>Log in</h2>{err}<form method=\"post\" action=\"/console/login\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label>One-time login token<br><input name=\"token\" id=\"token\" size=\"72\" autocomplete=\"off\" value=\"{}\"></label>\
             <p><button type=\"submit\" id=\"login\">Log in</button></p></form>\
             <p>Get a token with <code>warden console login-token --as YOUR_ID</code>.</p>",
            esc(csrf),
            esc(token)
        ),
        false,
    )
}

fn time(ms: i64) -> String {
    warden_store::time::rfc3339(ms)
}

fn json_pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn card(inv: &Inventory, csrf: &str, c: &Card) -> String {
    let r = &c.req;
    let mut s = format!(
        "<section class=\"approval\" data-id=\"{id}\" data-status=\"{st}\"><h3>{agent} → {tool}</h3>",
        id = esc(&r.id),
        st = r.status.as_str(),
        agent = esc(&r.agent),
        tool = esc(&r.tool)
    );
    let owner_name = r
        .owner
        .as_ref()
        .map(|o| {
            let name = inv.humans.get(o).and_then(|h| h.name.clone());
            match name {
                Some(n) => format!("{} ({})", esc(&n), esc(o)),
                None => esc(o),
            }
        })
        .unwrap_or_else(|| "<span class=\"warn\">no owner</span>".into());
    s.push_str(&format!(
        "<p>Request <code class=\"approval-id\">{}</code> · owner {owner_name} · created {} · expires {}</p>",
        esc(&r.id),
        time(r.created_ms),
        time(r.expires_ms)
    ));
    s.push_str("<p>Effects: ");
    for e in &r.effects {
        let risk = matches!(e.as_str(), "external_send" | "code_exec" | "privileged");
        s.push_str(&format!(
            "<span class=\"tag{}\">{}</span>",
            if risk { " risk" } else { "" },
            esc(e)
        ));
    }
    if r.irreversible {
        s.push_str("<span class=\"tag risk\">irreversible</span>");
    }
    if r.effects.is_empty() && !r.irreversible {
        s.push_str("none declared");
    }
    s.push_str("</p>");
    if !r.delegation.is_empty() {
        s.push_str(&format!(
            "<p>Delegation chain: {} → {}</p>",
            esc(&r.delegation.join(" → ")),
            esc(&r.agent)
        ));
    }
    if r.tainted {
        s.push_str(&format!(
            "<p class=\"warn\">This session has read untrusted content ({}).</p>",
            esc(&r.taint_sources.join(", "))
        ));
    }
    s.push_str(&format!(
        "<p>Why: {} (policies: {})</p>",
        esc(&r.reasons.join("; ")),
        esc(&r.policies.join(", "))
    ));
    s.push_str(&format!(
        "<h4>Arguments (secrets redacted)</h4><pre class=\"args\">{}</pre><p>Digest <code>{}</code></p>",
        esc(&json_pretty(&r.display_args)),
        esc(&r.args_digest)
    ));
    match &c.previous {
        Some(p) => {
            let d = diff_args(&p.display_args, &r.display_args);
            s.push_str(&format!(
                "<h4>Changes since the last approved call ({}, {})</h4>",
                esc(&p.id),
                time(p.created_ms)
            ));
            if d.is_empty() {
                s.push_str("<p class=\"changes\">Same arguments as the last approved call.</p>");
            } else {
                s.push_str("<table class=\"changes\"><tr><th>argument</th><th>change</th><th>before</th><th>now</th></tr>");
                for ch in d {
                    s.push_str(&format!(
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&ch.path),
                        ch.change,
                        esc(&ch.before.map(|v| v.to_string()).unwrap_or_default()),
                        esc(&ch.after.map(|v| v.to_string()).unwrap_or_default())
                    ));
                }
                s.push_str("</table>");
            }
        }
        None => s.push_str("<h4>Changes</h4><p class=\"changes\">No earlier approved call of this agent and tool.</p>"),
    }
    if !r.history.is_empty() {
        s.push_str("<h4>Session history</h4><table class=\"history\"><tr><th>time</th><th>event</th><th>tool</th><th>decision</th><th>outcome</th></tr>");
        for h in &r.history {
            let f = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            s.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f("time")),
                esc(&f("kind")),
                esc(&f("tool")),
                esc(&f("decision")),
                esc(&f("outcome"))
            ));
        }
        s.push_str("</table>");
    }
    s.push_str(&format!(
        "<p>Approvers: {} · {} of {} approval(s)",
        esc(&r.approvers.join(", ")),
        r.approvals().len(),
        r.approvals_required
    ));
    if r.separation_of_duties {
        s.push_str(" · separation of duties");
    }
    s.push_str("</p>");
    for v in &r.votes {
        s.push_str(&format!(
            "<p class=\"vote\">{} {} at {}: {}</p>",
            esc(&v.human),
            v.kind.as_str(),
            time(v.at_ms),
            esc(&v.reason)
        ));
    }
    if let Err(why) = &c.eligible {
        s.push_str(&format!(
            "<p class=\"warn ineligible\">You may not answer this request: {}.</p>",
            esc(why)
        ));
    }
    s.push_str(&format!(
        "<form method=\"post\" class=\"decide\" data-id=\"{id}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>Reason<br><textarea name=\"reason\" required></textarea></label><p>\
         <button type=\"submit\" class=\"approve\" formaction=\"/console/approvals/{id}/approve\">Approve</button>\
         <button type=\"submit\" class=\"deny\" formaction=\"/console/approvals/{id}/deny\">Deny</button></p></form></section>",
        id = esc(&r.id),
        csrf = esc(csrf)
    ));
    s
}

/// The list (also served alone to the polling script).
pub fn list(inv: &Inventory, csrf: &str, cards: &[Card], recent: &[ApprovalRequest]) -> String {
    let mut tag = Sha256::new();
    for c in cards {
        tag.update(c.req.id.as_bytes());
        tag.update(c.req.version.to_le_bytes());
    }
    for r in recent {
        tag.update(r.id.as_bytes());
        tag.update(r.version.to_le_bytes());
    }
    let tag = hex::encode(&tag.finalize()[..8]);
    let mut s = format!(
        "<div id=\"approvals\" data-tag=\"{tag}\" data-pending=\"{}\"><h2>Pending approvals (<span id=\"pending-count\">{}</span>)</h2>",
        cards.len(),
        cards.len()
    );
    if cards.is_empty() {
        s.push_str("<p id=\"none-pending\">Nothing is waiting for a human. New requests appear here without a reload.</p>");
    }
    for c in cards {
        s.push_str(&card(inv, csrf, c));
    }
    if !recent.is_empty() {
        s.push_str("<h2>Recently answered</h2><table id=\"recent\"><tr><th>request</th><th>agent</th><th>tool</th><th>status</th><th>answer</th></tr>");
        for r in recent {
            s.push_str(&format!(
                "<tr data-id=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"status\">{}</td><td>{}</td></tr>",
                esc(&r.id),
                esc(&r.id),
                esc(&r.agent),
                esc(&r.tool),
                r.status.as_str(),
                esc(&r.answer_summary())
            ));
        }
        s.push_str("</table>");
    }
    s.push_str("</div>");
    s
}

/// The pending-approvals page.
pub fn index(
    inv: &Inventory,
    human: &str,
    csrf: &str,
    cards: &[Card],
    recent: &[ApprovalRequest],
    done: Option<&str>,
    poll_ms: u64,
) -> String {
    let groups = inv.groups_of(human).join(", ");
    let right = format!(
        "<span id=\"whoami\">{}</span> ({}) <form method=\"post\" action=\"/console/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form>",
        esc(human),
        esc(&groups),
        esc(csrf)
    );
    let flash = match done {
        Some(id) => format!(
            "<p class=\"flash\" id=\"flash\">Your answer to {} was recorded.</p>",
            esc(id)
        ),
        None => String::new(),
    };
    shell(
        "Warden: pending approvals",
        &right,
        &format!(
            "<div id=\"poll\" data-ms=\"{poll_ms}\" hidden></div>{flash}{}",
            list(inv, csrf, cards, recent)
        ),
        true,
    )
}
