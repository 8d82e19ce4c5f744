//! Administration: users (create, change role, disable), API tokens (create, revoke) and the
//! audit trail. Every form is a server function the server checks for the admin role.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{
    AdminCreateToken, AdminCreateUser, AdminRevokeToken, AdminUpdateUser, ServerError, admin_audit, admin_list_tokens,
    admin_list_users,
};
use crate::model::{Role, Scope};

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `/admin`, `/notifications` or `/status-pages`, by the path.
#[component]
pub fn AdminSection() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let section = Memo::new(move |_| {
        let path = location.pathname.get();
        if path.starts_with("/notifications") {
            1
        } else if path.starts_with("/status-pages") {
            2
        } else {
            0
        }
    });
    move || match section.get() {
        1 => view! { <super::notifications::Notifications/> }.into_any(),
        2 => view! { <super::status_pages::StatusPages/> }.into_any(),
        _ => view! { <Admin/> }.into_any(),
    }
}

#[component]
pub fn Admin() -> impl IntoView {
    let create_user = ServerAction::<AdminCreateUser>::new();
    let update_user = ServerAction::<AdminUpdateUser>::new();
    let create_token = ServerAction::<AdminCreateToken>::new();
    let revoke_token = ServerAction::<AdminRevokeToken>::new();
    let users =
        Resource::new(move || (create_user.version().get(), update_user.version().get()), |_| admin_list_users());
    let tokens =
        Resource::new(move || (create_token.version().get(), revoke_token.version().get()), |_| admin_list_tokens());
    let audit = Resource::new(
        move || {
            (
                create_user.version().get(),
                update_user.version().get(),
                create_token.version().get(),
                revoke_token.version().get(),
            )
        },
        |_| admin_audit(),
    );
    let failure = |v: Option<Result<_, ServerError>>| {
        v.and_then(|r| r.err()).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })
    };
    view! {
        <Title text="Admin"/>
        <section class="page">
            <h1>"Administration"</h1>

            <h2 id="users">"Users"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading users…"</p> }>
                {move || users.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="grid" aria-labelledby="users">
                            <thead><tr><th>"Email"</th><th>"Name"</th><th>"Role"</th><th>"State"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| {
                                    let id_role = u.id.to_string();
                                    let id_toggle = u.id.to_string();
                                    let role_label = format!("Role of {}", u.email);
                                    let email = u.email.clone();
                                    let row_key = u.email.clone();
                                    let options = Role::ALL.map(|r| view! {
                                        <option value=r.as_str() selected=r == u.role>{r.as_str()}</option>
                                    });
                                    let (toggle_label, toggle_to) = if u.disabled { ("Enable", "false") } else { ("Disable", "true") };
                                    view! {
                                        <tr data-user=row_key>
                                            <td>{email}</td>
                                            <td>{u.display_name.clone()}</td>
                                            <td>
                                                <ActionForm action=update_user attr:class="inline">
                                                    <input type="hidden" name="id" value=id_role/>
                                                    <select name="role" aria-label=role_label>{options}</select>
                                                    <button class="btn" type="submit">"Save role"</button>
                                                </ActionForm>
                                            </td>
                                            <td>{if u.disabled { "disabled" } else { "enabled" }}</td>
                                            <td>
                                                <ActionForm action=update_user attr:class="inline">
                                                    <input type="hidden" name="id" value=id_toggle/>
                                                    <input type="hidden" name="disabled" value=toggle_to/>
                                                    <button class="btn" type="submit">{toggle_label}</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            {move || failure(update_user.value().get().map(|r| r.map(|_| ())))}

            <h3>"Add a user"</h3>
            <ActionForm action=create_user attr:class="form row">
                <label>"Email" <input type="email" name="email" required/></label>
                <label>"Name" <input name="display_name"/></label>
                <label>"Role"
                    <select name="role">{Role::ALL.map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> })}</select>
                </label>
                <label>"Password" <input type="password" name="password" required minlength="12" autocomplete="new-password"/></label>
                <button class="btn primary" type="submit">"Add user"</button>
            </ActionForm>
            {move || failure(create_user.value().get().map(|r| r.map(|_| ())))}

            <h2 id="tokens">"API tokens"</h2>
            <p class="muted">"For push agents (push), remote agents (agent), scripts (read) and automation (admin). A token is shown once, when it is created."</p>
            {move || create_token.value().get().and_then(Result::ok).map(|t| view! {
                <p class="ok" role="status">"New token " <strong>{t.summary.name}</strong> " — copy it now, it is not shown again: "
                    <code class="secret" data-testid="new-token">{t.token}</code></p>
            })}
            {move || failure(create_token.value().get().map(|r| r.map(|_| ())))}
            <ActionForm action=create_token attr:class="form row">
                <label>"Name" <input name="name" required/></label>
                <label>"Scope"
                    <select name="scope">{Scope::ALL.map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })}</select>
                </label>
                <label>"Expires in days (empty: never)" <input name="expires_in_days" inputmode="numeric"/></label>
                <button class="btn primary" type="submit">"Create token"</button>
            </ActionForm>
            <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
                {move || tokens.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="grid" aria-labelledby="tokens">
                            <thead><tr><th>"Name"</th><th>"Scope"</th><th>"Token"</th><th>"Created"</th><th>"Expires"</th><th>"Last used"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|t| view! {
                                    <tr>
                                        <td>{t.name.clone()}</td>
                                        <td>{t.scope.as_str()}</td>
                                        <td><code>{t.prefix.clone()} "…"</code></td>
                                        <td>{when(t.created_at)} " by " {t.created_by.clone()}</td>
                                        <td>{t.expires_at.map(when).unwrap_or_else(|| "never".into())}</td>
                                        <td>{t.last_used_at.map(when).unwrap_or_else(|| "never".into())}</td>
                                        <td>{if t.revoked {
                                            view! { <span class="muted">"revoked"</span> }.into_any()
                                        } else {
                                            view! {
                                                <ActionForm action=revoke_token attr:class="inline">
                                                    <input type="hidden" name="id" value=t.id.to_string()/>
                                                    <button class="btn" type="submit">"Revoke"</button>
                                                </ActionForm>
                                            }.into_any()
                                        }}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>

            <Agents revoke=revoke_token/>

            <Checklists/>

            <h2 id="audit">"Audit trail"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || audit.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(rows) => view! {
                        <table class="grid" aria-labelledby="audit">
                            <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Target"</th><th>"From"</th></tr></thead>
                            <tbody>
                                {rows.into_iter().map(|a| view! {
                                    <tr>
                                        <td>{when(a.at)}</td><td>{a.actor}</td><td>{a.action}</td><td>{a.target}</td>
                                        <td>{a.remote_addr.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// Remote agents: where they check from, whether they are connected and keeping up, and a way to
/// shut one out (revoking its token).
#[component]
fn Agents(revoke: ServerAction<AdminRevokeToken>) -> impl IntoView {
    let agents = Resource::new(move || revoke.version().get(), |_| crate::api::admin_list_agents());
    let ms = |v: i64| if v.abs() >= 10_000 { format!("{:.0} s", v as f64 / 1000.0) } else { format!("{v} ms") };
    view! {
        <h2 id="agents">"Agents"</h2>
        <p class="muted">"Run " <code>"triage agent --server URL --location NAME"</code>
            " with a token of scope " <code>"agent"</code>
            "; probes whose locations name its location run there. Revoking its token shuts it out at once."</p>
        <Transition fallback=|| view! { <p class="muted">"Loading agents…"</p> }>
            {move || agents.get().map(|r| match r {
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="muted" data-testid="no-agents">"No agent has connected yet."</p> }.into_any(),
                Ok(list) => view! {
                    <table class="grid" aria-labelledby="agents">
                        <thead><tr>
                            <th>"Location"</th><th>"State"</th><th>"Version"</th><th>"Probes"</th><th>"Last seen"</th>
                            <th title="How old the oldest result of its last batch was on arrival">"Lag"</th>
                            <th title="Checked, not yet delivered">"Buffered"</th><th title="Dropped by a full spool">"Dropped"</th>
                            <th title="Its clock minus the server's">"Clock"</th><th>"Token"</th><th></th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|a| {
                                let state = if a.revoked { "revoked" } else if a.connected { "connected" } else { "disconnected" };
                                let dropped_class = if a.dropped > 0 { "error" } else { "" };
                                view! {
                                    <tr data-agent=a.location.clone()>
                                        <td>{a.location.clone()}</td>
                                        <td><span class=format!("agent-state {state}")>{state}</span></td>
                                        <td>{a.version.clone()}</td>
                                        <td>{a.assigned}</td>
                                        <td>{when(a.last_seen)}</td>
                                        <td>{ms(a.lag_ms)}</td>
                                        <td>{a.buffered}</td>
                                        <td class=dropped_class>{a.dropped}</td>
                                        <td>{ms(a.clock_offset_ms)}</td>
                                        <td>{a.token_name.clone()}</td>
                                        <td>{(!a.revoked).then(|| view! {
                                            <ActionForm action=revoke attr:class="inline">
                                                <input type="hidden" name="id" value=a.token_id.to_string()/>
                                                <button class="btn" type="submit" title="Revokes the agent's token (every agent using it)">"Revoke"</button>
                                            </ActionForm>
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
    }
}

/// The checklist library: pick one, edit its TOML, save a new version (incidents keep the
/// version they were shown).
#[component]
fn Checklists() -> impl IntoView {
    let save = ServerAction::<crate::api::AdminSaveChecklist>::new();
    let list = Resource::new(move || save.version().get(), |_| crate::api::admin_list_checklists());
    let chosen = RwSignal::new(None::<String>);
    view! {
        <h2 id="checklists">"Checklists"</h2>
        <p class="muted">"Saving makes a new version; incidents keep the version they were first shown."</p>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || list.get().map(|r| match r {
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(all) => {
                    let rows = all.iter().map(|c| {
                        let id = c.id.clone();
                        view! {
                            <tr>
                                <td><button type="button" class="link" on:click=move |_| chosen.set(Some(id.clone()))>{c.id.clone()}</button></td>
                                <td>{c.title.clone()}</td><td>{c.version}</td><td>{c.created_by.clone()}</td>
                            </tr>
                        }
                    }).collect_view();
                    let editor = move || {
                        let id = chosen.get()?;
                        let c = all.iter().find(|c| c.id == id)?.clone();
                        Some(view! {
                            <ActionForm action=save attr:class="form checklist-editor">
                                <label>{format!("{} (version {}) ", c.id, c.version)}
                                    <textarea name="toml" rows="24" aria-label="Checklist TOML">{c.toml.clone()}</textarea>
                                </label>
                                <button class="btn primary" type="submit">"Save as a new version"</button>
                            </ActionForm>
                        })
                    };
                    view! {
                        <table class="grid" aria-labelledby="checklists">
                            <thead><tr><th>"Id"</th><th>"Title"</th><th>"Version"</th><th>"Saved by"</th></tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                        {editor}
                    }.into_any()
                }
            })}
        </Transition>
        {move || save.value().get().map(|r| match r {
            Ok(v) => view! { <p class="ok" role="status">{format!("Saved as version {v}.")}</p> }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
    }
}
