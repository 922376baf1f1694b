//! Google Drive links: share links (`/file/d/ID/view`, `open?id=`, `uc?id=`) point at an HTML
//! page, not the file. They are rewritten to the direct download, and for files too big for
//! Drive's virus scan, the "can't scan this file" interstitial is answered: its form
//! (`confirm`, `uuid`, … fields) or the older `download_warning` cookie gives the confirm token.

use reqwest::Url;

const DRIVE_HOSTS: [&str; 3] = [
    "drive.google.com",
    "docs.google.com",
    "drive.usercontent.google.com",
];

/// Whether a URL is a Google Drive one (whose HTML answers are interstitials, not errors).
pub fn is_drive(url: &Url) -> bool {
    url.host_str().is_some_and(|h| DRIVE_HOSTS.contains(&h))
}

/// The file id in a Drive share or download link.
pub fn file_id(url: &Url) -> Option<String> {
    if !is_drive(url) {
        return None;
    }
    let segs: Vec<&str> = url.path_segments()?.collect();
    let file_d = segs
        .iter()
        .position(|s| *s == "d")
        .filter(|&i| i > 0 && segs[i - 1] == "file");
    if let Some(i) = file_d {
        return segs
            .get(i + 1)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string());
    }
    url.query_pairs()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// The direct-download URL for a Drive link, or `None` if it is not one (or has no id).
pub fn rewrite(url: &Url) -> Option<Url> {
    let id = file_id(url)?;
    if url.host_str() == Some("drive.usercontent.google.com") {
        // Already the download host; keep its parameters (confirm, uuid, …).
        return None;
    }
    let mut u = Url::parse("https://drive.google.com/uc?export=download").ok()?;
    u.query_pairs_mut().append_pair("id", &id);
    Some(u)
}

/// What to request after an interstitial page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    pub url: Url,
    /// `Cookie` header to send with it (the `download_warning` cookie, when that was the way).
    pub cookie: Option<String>,
}

/// Works out the confirmed download from an interstitial: its URL, `Set-Cookie` values and HTML.
/// The error says what the page was (its title), e.g. a quota or sign-in page.
pub fn confirm_step(
    page_url: &Url,
    set_cookies: &[String],
    html: &str,
) -> Result<NextStep, String> {
    for c in set_cookies {
        let pair = c.split(';').next().unwrap_or("").trim();
        let warning = pair
            .split_once('=')
            .filter(|(name, value)| name.starts_with("download_warning") && !value.is_empty());
        if let Some((_, value)) = warning {
            let mut url = page_url.clone();
            set_param(&mut url, "confirm", value);
            return Ok(NextStep {
                url,
                cookie: Some(pair.to_string()),
            });
        }
    }
    if let Some(url) = form_target(page_url, html) {
        return Ok(NextStep { url, cookie: None });
    }
    if let Some(token) = confirm_in_links(html) {
        let mut url = page_url.clone();
        set_param(&mut url, "confirm", &token);
        return Ok(NextStep { url, cookie: None });
    }
    let title = tag_text(html, "title").unwrap_or_else(|| "untitled page".into());
    Err(format!(
        "Google Drive answered with an HTML page ({title:?}) and no download confirmation; \
         the file may not be shared publicly or its download quota is exceeded"
    ))
}

fn set_param(url: &mut Url, key: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut q = url.query_pairs_mut();
    q.clear();
    for (k, v) in &kept {
        q.append_pair(k, v);
    }
    q.append_pair(key, value);
}

/// `<form id="download-form" action=…>` with its hidden inputs, as the GET it submits.
fn form_target(page_url: &Url, html: &str) -> Option<Url> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(rel) = lower[from..].find("<form") {
        let start = from + rel;
        let tag_end = start + lower[start..].find('>')?;
        let tag = &html[start..=tag_end];
        let end = lower[tag_end..]
            .find("</form")
            .map_or(html.len(), |e| tag_end + e);
        from = tag_end;
        let is_download = attr(tag, "id").is_some_and(|id| id == "download-form")
            || attr(tag, "action").is_some_and(|a| a.contains("/download") || a.contains("/uc"));
        if !is_download {
            continue;
        }
        let action = attr(tag, "action")?;
        let mut url = page_url.join(&action).ok()?;
        url.set_query(None);
        let body = &html[tag_end..end];
        let body_lower = &lower[tag_end..end];
        let mut fields = Vec::new();
        let mut pos = 0;
        while let Some(rel) = body_lower[pos..].find("<input") {
            let s = pos + rel;
            let e = s + body_lower[s..]
                .find('>')
                .unwrap_or(body_lower.len() - s - 1);
            let input = &body[s..=e];
            pos = e;
            if let (Some(name), Some(value)) = (attr(input, "name"), attr(input, "value")) {
                fields.push((name, value));
            }
        }
        if !fields.iter().any(|(k, _)| k == "confirm" || k == "id") {
            continue;
        }
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &fields {
                q.append_pair(k, v);
            }
        }
        return Some(url);
    }
    None
}

/// Older interstitials: a link `…/uc?export=download&amp;confirm=TOKEN&amp;id=…`.
fn confirm_in_links(html: &str) -> Option<String> {
    let i = html.find("confirm=")?;
    let token: String = html[i + 8..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The value of attribute `name` in one tag (quoted with " or ', or bare), entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(rel) = lower[from..].find(name) {
        let i = from + rel;
        from = i + name.len();
        // Whole attribute name only: preceded by whitespace, followed by optional spaces and '='.
        if i == 0 || !bytes[i - 1].is_ascii_whitespace() {
            continue;
        }
        let rest = tag[from..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        };
        return Some(decode_entities(value));
    }
    None
}

fn tag_text(html: &str, tag: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let s = lower.find(&format!("<{tag}"))?;
    let s = s + lower[s..].find('>')? + 1;
    let e = s + lower[s..].find(&format!("</{tag}"))?;
    Some(decode_entities(html[s..e].trim()))
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn rewrites_share_links() {
        let direct = "https://drive.google.com/uc?export=download&id=1AbC_d-E";
        for link in [
            "https://drive.google.com/file/d/1AbC_d-E/view?usp=sharing",
            "https://drive.google.com/file/d/1AbC_d-E/view",
            "https://drive.google.com/file/d/1AbC_d-E",
            "https://drive.google.com/u/0/file/d/1AbC_d-E/edit",
            "https://drive.google.com/open?id=1AbC_d-E",
            "https://drive.google.com/uc?id=1AbC_d-E&export=download",
            "https://docs.google.com/uc?export=download&id=1AbC_d-E",
        ] {
            assert_eq!(rewrite(&u(link)).unwrap().as_str(), direct, "{link}");
        }
        assert!(rewrite(&u("https://example.com/file/d/x/view")).is_none());
        assert!(rewrite(&u("https://drive.google.com/drive/folders")).is_none());
        assert!(
            rewrite(&u(
                "https://drive.usercontent.google.com/download?id=x&confirm=t"
            ))
            .is_none()
        );
        assert!(is_drive(&u(
            "https://drive.usercontent.google.com/download?id=x"
        )));
    }

    #[test]
    fn answers_the_current_virus_scan_form() {
        let html = r#"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>
<body><form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" value="Download anyway"/>
<input type="hidden" name="id" value="1AbC_d-E"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="0a1b-2c3d&amp;x"></form></body></html>"#;
        let step = confirm_step(
            &u("https://drive.google.com/uc?export=download&id=1AbC_d-E"),
            &[],
            html,
        )
        .unwrap();
        assert_eq!(
            step.url.as_str(),
            "https://drive.usercontent.google.com/download?id=1AbC_d-E&export=download&confirm=t&uuid=0a1b-2c3d%26x"
        );
        assert_eq!(step.cookie, None);
    }

    #[test]
    fn answers_the_download_warning_cookie() {
        let page = u("https://drive.google.com/uc?export=download&id=X");
        let cookies = vec![
            "NID=abc; Path=/".to_string(),
            "download_warning_13058876669334088843_X=Tk3n; Domain=.drive.google.com; Path=/uc; Secure; HttpOnly".to_string(),
        ];
        let step = confirm_step(&page, &cookies, "<html></html>").unwrap();
        assert_eq!(
            step.url.as_str(),
            "https://drive.google.com/uc?export=download&id=X&confirm=Tk3n"
        );
        assert_eq!(
            step.cookie.as_deref(),
            Some("download_warning_13058876669334088843_X=Tk3n")
        );
    }

    #[test]
    fn answers_old_confirm_links_and_reports_other_pages() {
        let page = u("https://drive.google.com/uc?export=download&id=X");
        let html = r#"<a id="uc-download-link" href="/uc?export=download&amp;confirm=aB1_-&amp;id=X">Download anyway</a>"#;
        let step = confirm_step(&page, &[], html).unwrap();
        assert_eq!(
            step.url.as_str(),
            "https://drive.google.com/uc?export=download&id=X&confirm=aB1_-"
        );
        let err = confirm_step(
            &page,
            &[],
            "<html><head><title>Google Drive - Quota exceeded</title></head><body>Too many users</body></html>",
        )
        .unwrap_err();
        assert!(err.contains("Quota exceeded"), "{err}");
    }
}
