//! Paginated lists: `{"object":"list","data":[...],"first_id","last_id","has_more"}`
//! and the query parameters that ask for a page.

use serde::{Deserialize, Serialize};

use crate::limits::DEFAULT_LIST_LIMIT;

/// The `object` value of every list.
pub const LIST_OBJECT: &str = "list";

fn list_object() -> String {
    LIST_OBJECT.to_owned()
}

/// One page of a list endpoint (conversations, messages, keys).
///
/// `first_id` and `last_id` are the ids of the first and last items of
/// `data` (`null` for an empty page); pass `last_id` as `after` to get the
/// next page while `has_more` is true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage<T> {
    /// Always `list`.
    #[serde(default = "list_object")]
    pub object: String,
    /// The items of this page.
    pub data: Vec<T>,
    /// Id of the first item, `null` when `data` is empty.
    #[serde(default)]
    pub first_id: Option<String>,
    /// Id of the last item, `null` when `data` is empty.
    #[serde(default)]
    pub last_id: Option<String>,
    /// Whether items follow this page.
    #[serde(default)]
    pub has_more: bool,
}

impl<T> ListPage<T> {
    /// A page of `data`; `id` reads an item's id for `first_id` and `last_id`.
    pub fn new(data: Vec<T>, has_more: bool, id: impl Fn(&T) -> &str) -> Self {
        Self {
            object: list_object(),
            first_id: data.first().map(|item| id(item).to_owned()),
            last_id: data.last().map(|item| id(item).to_owned()),
            data,
            has_more,
        }
    }

    /// The page `params` asks for of `items`, which come oldest first:
    /// reversed for `order=desc` (the default), started after the item
    /// `after` names, cut to `limit`. `None` when `after` names no item.
    ///
    /// ```
    /// use lumyx_api_types::{ListOrder, ListPage, ListParams};
    ///
    /// let items = vec!["a", "b", "c"];
    /// let params = ListParams { limit: Some(1), order: Some(ListOrder::Asc), after: Some("a".into()) };
    /// let page = ListPage::paginate(items.clone(), &params, |item| item).unwrap();
    /// assert_eq!((page.data, page.has_more), (vec!["b"], true));
    ///
    /// let newest = ListPage::paginate(items.clone(), &ListParams::default(), |item| item).unwrap();
    /// assert_eq!((newest.data, newest.has_more), (vec!["c", "b", "a"], false));
    ///
    /// let lost = ListParams { after: Some("z".into()), ..ListParams::default() };
    /// assert!(ListPage::paginate(items, &lost, |item| item).is_none());
    /// ```
    pub fn paginate(
        mut items: Vec<T>,
        params: &ListParams,
        id: impl Fn(&T) -> &str,
    ) -> Option<Self> {
        if params.order.as_ref() != Some(&ListOrder::Asc) {
            items.reverse();
        }
        let start = match &params.after {
            Some(after) => items.iter().position(|item| id(item) == after.as_str())? + 1,
            None => 0,
        };
        let limit = usize::try_from(params.limit_or_default()).unwrap_or(usize::MAX);
        let has_more = items.len() - start > limit;
        let data: Vec<T> = items.into_iter().skip(start).take(limit).collect();
        Some(Self::new(data, has_more, id))
    }
}

/// A list that is not paginated, such as models and personas:
/// `{"object":"list","data":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct List<T> {
    /// Always `list`.
    #[serde(default = "list_object")]
    pub object: String,
    /// The items.
    pub data: Vec<T>,
}

impl<T> List<T> {
    /// A list of `data`.
    pub fn new(data: Vec<T>) -> Self {
        Self {
            object: list_object(),
            data,
        }
    }
}

open_enum! {
    /// The `order` query parameter of a list, by creation time.
    pub enum ListOrder {
        /// Oldest first.
        Asc => "asc",
        /// Newest first.
        Desc => "desc",
    }
}

/// Query parameters of a list endpoint: `?limit=20&order=desc&after=conv_…`.
///
/// Validation keeps `limit` in [`LIST_LIMIT_RANGE`](crate::LIST_LIMIT_RANGE)
/// and `order` to `asc` or `desc`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListParams {
    /// Items per page, 1 to 100, default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Sort order by creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<ListOrder>,
    /// Cursor: the id after which the page starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl ListParams {
    /// `limit`, or the default of 20.
    pub fn limit_or_default(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIST_LIMIT)
    }
}
