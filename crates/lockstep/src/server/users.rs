//! `/api/me`: who I am, my name, my rooms.

use super::extract::ApiJson;
use super::rooms::RoomCard;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use lockstep_core::ids::UserId;
use lockstep_core::names::DisplayName;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me).patch(rename))
        .route("/me/rooms", get(my_rooms))
}

#[derive(Debug, Serialize)]
struct Me {
    id: UserId,
    name: DisplayName,
}

async fn me(CurrentUser(user): CurrentUser) -> Json<Me> {
    Json(Me {
        id: user.id,
        name: user.name,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<Rename>,
) -> Result<Json<Me>, ApiError> {
    let name = crate::rooms::set_name(&state, user.id, &body.name).await?;
    Ok(Json(Me { id: user.id, name }))
}

/// Rooms listed on the lobby's "yours" and "recent" shelves.
const MY_ROOMS_MAX: i64 = 20;

async fn my_rooms(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let owned = state.store.owned_rooms(user.id, MY_ROOMS_MAX).await?;
    let recent = state.store.visited_rooms(user.id, MY_ROOMS_MAX).await?;
    let cards = |rooms: Vec<_>| -> Vec<RoomCard> {
        rooms
            .iter()
            .map(|r| RoomCard::new(r, state.rooms.viewers(r.id)))
            .collect()
    };
    Ok(Json(
        serde_json::json!({ "owned": cards(owned), "recent": cards(recent) }),
    ))
}
