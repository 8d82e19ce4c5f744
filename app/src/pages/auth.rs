//! Signing in, the first-run set-up and the account page. The forms post straight to the REST
//! API (no script needed); the server answers with a redirect back here, naming any error in
//! the query string.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::model::CurrentUser;

fn query(name: &'static str) -> impl Fn() -> String + Copy {
    let q = use_query_map();
    move || q.read().get(name).unwrap_or_default()
}

#[component]
pub fn Login() -> impl IntoView {
    let error = query("error");
    let next = query("next");
    let email = query("email");
    let message = move || match error().as_str() {
        "" => None,
        "invalid" => Some("Wrong email or password."),
        "throttled" => Some("Too many failed attempts. Wait a few minutes, then try again."),
        _ => Some("Could not sign in. Try again."),
    };
    view! {
        <Title text="Sign in"/>
        <section class="page narrow">
            <h1>"Sign in"</h1>
            {move || message().map(|m| view! { <p class="error" role="alert">{m}</p> })}
            <form method="post" action="/api/v1/auth/login" class="form">
                <input type="hidden" name="next" value=next/>
                <label>"Email" <input type="email" name="email" required autocomplete="username" value=email/></label>
                <label>"Password" <input type="password" name="password" required autocomplete="current-password"/></label>
                <button class="btn primary" type="submit">"Sign in"</button>
            </form>
        </section>
    }
}

#[component]
pub fn Setup() -> impl IntoView {
    let error = query("error");
    let email = query("email");
    let message = move || match error().as_str() {
        "" => None,
        "token" => Some("The set-up token does not match the one in the server's log."),
        "email" => Some("Enter an email address."),
        "password" => Some("The password must be at least 12 characters."),
        "done" => Some("Triage already has an admin. Sign in instead."),
        "throttled" => Some("Too many attempts. Wait a few minutes."),
        _ => Some("Could not create the admin. Try again."),
    };
    view! {
        <Title text="Set up"/>
        <section class="page narrow">
            <h1>"Create the first admin"</h1>
            <p class="muted">
                "Triage has no users yet. The server printed a one-time set-up token in its log when it started "
                "(it is also in the file " <code>"setup-token"</code> " of the data directory). Enter it to create "
                "the first admin; after that the token stops working."
            </p>
            {move || message().map(|m| view! { <p class="error" role="alert">{m}</p> })}
            <form method="post" action="/api/v1/auth/setup" class="form">
                <label>"Set-up token" <input name="setup_token" required autocomplete="off" spellcheck="false"/></label>
                <label>"Email" <input type="email" name="email" required autocomplete="username" value=email/></label>
                <label>"Name" <input name="display_name" autocomplete="name"/></label>
                <label>"Password (at least 12 characters)"
                    <input type="password" name="password" required minlength="12" autocomplete="new-password"/>
                </label>
                <button class="btn primary" type="submit">"Create admin and sign in"</button>
            </form>
        </section>
    }
}

#[component]
pub fn Account() -> impl IntoView {
    let me = use_context::<CurrentUser>().and_then(|c| c.0);
    let error = query("error");
    let changed = query("changed");
    let message = move || match error().as_str() {
        "" => None,
        "current" => Some("The current password is wrong."),
        "new" => Some("The new password must be at least 12 characters."),
        "throttled" => Some("Too many failed attempts. Wait a few minutes."),
        _ => Some("Could not change the password."),
    };
    view! {
        <Title text="Account"/>
        <section class="page narrow">
            <h1>"Account"</h1>
            {me.map(|m| view! {
                <dl class="facts">
                    <dt>"Email"</dt><dd>{m.email}</dd>
                    <dt>"Role"</dt><dd>{m.role.as_str()} " — " {m.role.meaning()}</dd>
                </dl>
            })}
            <h2>"Change password"</h2>
            <p class="muted">"Your other sessions end when the password changes."</p>
            {move || (!changed().is_empty()).then(|| view! { <p class="ok" role="status">"Password changed."</p> })}
            {move || message().map(|m| view! { <p class="error" role="alert">{m}</p> })}
            <form method="post" action="/api/v1/auth/password" class="form">
                <label>"Current password"
                    <input type="password" name="current_password" required autocomplete="current-password"/>
                </label>
                <label>"New password (at least 12 characters)"
                    <input type="password" name="new_password" required minlength="12" autocomplete="new-password"/>
                </label>
                <button class="btn primary" type="submit">"Change password"</button>
            </form>
        </section>
    }
}
