//! The one page every console list is: facts, folded forms, a search, a table with row
//! actions, and the next page's link.

use super::*;

// ---------------------------------------------------------------- the list page

#[derive(Template)]
#[template(path = "console/list.html")]
pub(super) struct ListPage {
    pub(super) layout: Layout,
    pub(super) csrf: String,
    pub(super) path: &'static str,
    pub(super) searchable: bool,
    pub(super) search_hint: &'static str,
    pub(super) q: String,
    pub(super) new_key: Option<String>,
    /// What the once-shown secret is, and what to do with it.
    pub(super) new_key_title: &'static str,
    pub(super) new_key_note: &'static str,
    pub(super) facts: Vec<Vec<Fact>>,
    pub(super) forms: Vec<FormSpec>,
    pub(super) headers: Vec<&'static str>,
    pub(super) rows: Vec<Row>,
    pub(super) has_actions: bool,
    pub(super) next_href: Option<String>,
}

pub(super) struct Fact {
    pub(super) label: &'static str,
    pub(super) text: String,
    pub(super) class: String,
}

pub(super) struct FormSpec {
    pub(super) id: &'static str,
    /// Shown unfolded (forms fold into a `<details>` above the list).
    pub(super) open: bool,
    pub(super) title: &'static str,
    pub(super) action: &'static str,
    pub(super) submit: &'static str,
    /// Posted as `multipart/form-data` (the form has a file input).
    pub(super) multipart: bool,
    pub(super) fields: Vec<Field>,
}

pub(super) struct Field {
    pub(super) name: &'static str,
    /// The input's type: `text` or `file`.
    pub(super) input: &'static str,
    pub(super) label: &'static str,
    pub(super) value: String,
    pub(super) required: bool,
    pub(super) options: Vec<String>,
}

pub(super) fn field(name: &'static str, label: &'static str, required: bool) -> Field {
    Field {
        name,
        input: "text",
        label,
        value: String::new(),
        required,
        options: Vec::new(),
    }
}

pub(super) struct Row {
    pub(super) id: String,
    pub(super) cells: Vec<Cell>,
    pub(super) actions: Vec<RowAction>,
}

pub(super) struct Cell {
    pub(super) label: &'static str,
    pub(super) text: String,
    pub(super) class: String,
    /// A link the text leads to, if any.
    pub(super) href: Option<String>,
}

pub(super) fn cell(label: &'static str, text: impl Into<String>) -> Cell {
    Cell {
        label,
        text: text.into(),
        class: String::new(),
        href: None,
    }
}

pub(super) fn status_cell(label: &'static str, status: &str) -> Cell {
    Cell {
        label,
        text: status.to_owned(),
        class: format!("status status-{status}"),
        href: None,
    }
}

pub(super) struct RowAction {
    pub(super) action: String,
    pub(super) label: &'static str,
    pub(super) class: &'static str,
    pub(super) hidden: Vec<(&'static str, String)>,
}

pub(super) fn act(action: String, label: &'static str, class: &'static str) -> RowAction {
    RowAction {
        action,
        label,
        class,
        hidden: Vec::new(),
    }
}

impl ListPage {
    pub(super) fn new(v: &Vendor, path: &'static str, title: &str) -> Self {
        ListPage {
            layout: v.layout(path, title),
            csrf: v.csrf(),
            path,
            searchable: false,
            search_hint: "",
            q: String::new(),
            new_key: None,
            new_key_title: "New key",
            new_key_note: "Give it to the subscriber now: it is shown only once.",
            facts: Vec::new(),
            forms: Vec::new(),
            headers: Vec::new(),
            rows: Vec::new(),
            has_actions: false,
            next_href: None,
        }
    }

    pub(super) fn search(
        mut self,
        q: &PageQuery,
        hint: &'static str,
        next: Option<String>,
    ) -> Self {
        self.searchable = true;
        self.search_hint = hint;
        self.q = q.q.clone().unwrap_or_default();
        self.next_href = next.map(|c| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            if !self.q.is_empty() {
                s.append_pair("q", &self.q);
            }
            s.append_pair("cursor", &c);
            format!("{}?{}", self.path, s.finish())
        });
        self
    }

    pub(super) fn done(mut self) -> Res {
        self.has_actions = self.rows.iter().any(|r| !r.actions.is_empty());
        Ok(render(StatusCode::OK, &self))
    }
}

pub(super) fn fact(label: &'static str, text: impl Into<String>, class: &str) -> Fact {
    Fact {
        label,
        text: text.into(),
        class: class.to_owned(),
    }
}
