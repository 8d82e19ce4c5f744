use leptos::prelude::*;
use leptos_meta::Title;

/// The overview of every probed service.
#[component]
pub fn Overview() -> impl IntoView {
    view! {
        <Title text="Overview"/>
        <section class="page">
            <h1>"Services"</h1>
            <div class="empty-state" role="status">
                <p><strong>"No services are probed yet."</strong></p>
                <p>
                    "Triage is running and its database is ready. Services appear here, worst first, "
                    "as soon as probes are configured. Triage's own health is on the "
                    <a href="/status">"status page"</a> "."
                </p>
            </div>
        </section>
    }
}
