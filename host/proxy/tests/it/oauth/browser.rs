//! The owner's browser, headless: follows an authorization URL through the authorization
//! server's login and consent forms (oidc-provider's development interactions: any login
//! and password pass) up to the redirect back to Portcullis, and answers that URL without
//! following it. Redirects are followed by hand and cookies kept by path, as a browser
//! would; the pages are simple enough for two small scanners instead of an HTML parser.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Method, Url, redirect};

/// A cookie: name, value, path.
type Cookie = (String, String, String);

pub struct Browser {
    http: Client,
    cookies: Vec<Cookie>,
    login: String,
}

impl Browser {
    /// A browser that logs in as `login`.
    pub fn new(login: &str) -> Self {
        Self {
            http: Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
            login: login.to_owned(),
        }
    }

    /// Follows `url` until a redirect to `stop_at`; answers that redirect's URL.
    pub async fn authorize(&mut self, url: &str, stop_at: &str) -> String {
        let mut url = Url::parse(url).unwrap();
        let mut method = Method::GET;
        let mut form: Vec<(String, String)> = Vec::new();
        for _ in 0..25 {
            let mut request = self.http.request(method.clone(), url.clone());
            let cookies = self.cookie_header(&url);
            if !cookies.is_empty() {
                request = request.header(COOKIE, cookies);
            }
            if method == Method::POST {
                let body: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&form)
                    .finish();
                request = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body);
            }
            let response = request.send().await.unwrap();
            self.keep_cookies(&response);
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers()[LOCATION].to_str().unwrap();
                let next = url.join(location).unwrap();
                if next.as_str().starts_with(stop_at) {
                    return next.to_string();
                }
                url = next;
                method = Method::GET;
                continue;
            }
            let page = response.text().await.unwrap();
            assert!(
                status.is_success(),
                "the authorization server answered {status}: {page}"
            );
            let (action, fields) =
                scan_form(&page).unwrap_or_else(|| panic!("no form on the page at {url}: {page}"));
            form = fields
                .into_iter()
                .map(|(name, value)| match name.as_str() {
                    "login" => (name, self.login.clone()),
                    "password" => (name, "any-password".to_owned()),
                    _ => (name, value),
                })
                .collect();
            url = url.join(&action).unwrap();
            method = Method::POST;
        }
        panic!("the authorization did not end within 25 steps (last at {url})");
    }

    fn cookie_header(&self, url: &Url) -> String {
        self.cookies
            .iter()
            .filter(|(_, _, path)| url.path().starts_with(path.as_str()))
            .map(|(name, value, _)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let text = header.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let path = parts
                .find_map(|p| p.strip_prefix("path=").or_else(|| p.strip_prefix("Path=")))
                .unwrap_or("/")
                .to_owned();
            self.cookies.retain(|(n, _, p)| !(n == name && *p == path));
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned(), path));
            }
        }
    }
}

/// The first form's `action` and its inputs' names and values.
fn scan_form(page: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = page.find("<form")?;
    let end = page[start..]
        .find("</form>")
        .map_or(page.len(), |e| start + e);
    let form = &page[start..end];
    let action = attribute(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find("<input") {
        rest = &rest[at..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        if let Some(name) = attribute(tag, "name") {
            fields.push((name, attribute(tag, "value").unwrap_or_default()));
        }
        rest = &rest[tag.len()..];
    }
    Some((action.replace("&amp;", "&"), fields))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[at..].find('"')?;
    Some(tag[at..at + end].to_owned())
}
