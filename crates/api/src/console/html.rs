//! The console's HTML: escaping, the page frame (its styles inline, nothing fetched from
//! anywhere), and the few pieces every page is built from. Server-rendered: a page is a
//! string, written with `push_str`/`format!` over escaped values.

use std::fmt::Write;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The styles of every page: readable at 1280 px and on a 390 px phone (tables scroll
/// sideways inside their box; nothing is wider than the screen).
const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1d1d1f;background:#f6f6f4}
header{background:#ff6f0f;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{margin-left:auto}
main{max-width:1200px;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.box{background:#fff;border:1px solid #e2e2de;border-radius:8px;padding:.8rem;overflow-x:auto;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
th{color:#666;font-weight:600}
code,pre{font:12.5px/1.4 ui-monospace,monospace;word-break:break-all}
pre{white-space:pre-wrap;margin:0}
.ok{color:#147a2e}.bad{color:#b3261e;font-weight:600}.muted{color:#777}
input,button,select{font:inherit;padding:.4rem .6rem;border:1px solid #bbb;border-radius:6px;max-width:100%}
button{background:#ff6f0f;color:#fff;border-color:#e05f00;cursor:pointer}
button.plain{background:#fff;color:#1d1d1f;border-color:#bbb}
button.danger{background:#b3261e;border-color:#8c1d18}
form.inline{display:inline}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:.6rem}
.card{background:#fff;border:1px solid #e2e2de;border-radius:8px;padding:.6rem .8rem}
.card b{display:block;font-size:1.3rem}
";

/// Who is signed in, for the frame: their id and the CSRF token of their session.
pub struct Operator<'a> {
    /// The operator's user id.
    pub user_id: String,
    /// The token every form of theirs carries.
    pub csrf: &'a str,
}

/// A whole page: the frame (with the console's navigation when an operator is signed in),
/// the title and `body` (already HTML).
pub fn page(
    status: StatusCode,
    title: &str,
    operator: Option<&Operator<'_>>,
    body: &str,
) -> Response {
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{} · Carrot</title><style>{STYLE}</style></head><body><header>",
        escape(title)
    );
    match operator {
        Some(op) => {
            html.push_str(
                "<a href=\"/console\">Carrot console</a><a href=\"/console/find\">Find</a>\
                 <a href=\"/console/log\">Log</a><a href=\"/console/dead-letters\">Dead letters</a>\
                 <a href=\"/console/deadlines\">Deadlines</a><a href=\"/console/rebuilds\">Rebuilds</a>",
            );
            let _ = write!(
                html,
                "<form class=\"inline\" method=\"post\" action=\"/console/logout\">{}\
                 <button class=\"plain\" type=\"submit\">Sign out</button></form>",
                csrf_field(op.csrf)
            );
        }
        None => html.push_str("<a href=\"/\">Carrot</a>"),
    }
    let _ = write!(
        html,
        "</header><main><h1>{}</h1>{body}</main></body></html>",
        escape(title)
    );
    (status, Html(html)).into_response()
}

/// The hidden field that carries the CSRF token in a form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(token)
    )
}

/// The box an action's form must have ticked (`confirm=yes`; `ConsoleAdmin::refusal`
/// refuses the action without it).
pub const CONFIRM_CHECKED: &str = "<p><label><input type=\"checkbox\" name=\"confirm\" \
     value=\"yes\" required> I have checked this trade</label></p>";

/// A table: a header row and rows of cells (already HTML).
pub fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut html = String::from("<div class=\"box\"><table><thead><tr>");
    for h in headers {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html.push_str("</tr></thead><tbody>");
    let mut empty = true;
    for row in rows {
        empty = false;
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{cell}</td>");
        }
        html.push_str("</tr>");
    }
    if empty {
        let _ = write!(
            html,
            "<tr><td class=\"muted\" colspan=\"{}\">None.</td></tr>",
            headers.len()
        );
    }
    html.push_str("</tbody></table></div>");
    html
}

/// A JSON value as a readable block.
pub fn json_block(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    format!("<pre>{}</pre>", escape(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
