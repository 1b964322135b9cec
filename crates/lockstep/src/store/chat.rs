//! Chat lines. Ids increase within the database, so a room's history pages by id.

use super::{Store, parse_id, parse_json, to_json};
use lockstep_core::ids::RoomId;
use lockstep_core::protocol::ChatLine;
use lockstep_core::room::NewChatLine;
use lockstep_core::time::ServerTime;
use sqlx::Row;
use sqlx::any::AnyRow;

fn line_from_row(r: &AnyRow) -> Result<ChatLine, sqlx::Error> {
    Ok(ChatLine {
        id: r.try_get("id")?,
        user_id: r
            .try_get::<Option<String>, _>("user_id")?
            .map(|s| parse_id(&s))
            .transpose()?,
        name: r.try_get("name")?,
        text: r.try_get("text")?,
        system: r
            .try_get::<Option<String>, _>("system")?
            .map(|s| parse_json(&s))
            .transpose()?,
        at: ServerTime(r.try_get("at_us")?),
    })
}

impl Store {
    /// Stores a line and returns its id.
    pub async fn insert_chat_line(
        &self,
        room: RoomId,
        line: &NewChatLine,
    ) -> Result<i64, sqlx::Error> {
        Self::insert_chat_line_on(&mut *self.pool().acquire().await?, room, line).await
    }

    pub(crate) async fn insert_chat_line_on(
        conn: &mut sqlx::AnyConnection,
        room: RoomId,
        line: &NewChatLine,
    ) -> Result<i64, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO chat_lines (room_id, user_id, name, text, system, at_us) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(room.to_string())
        .bind(line.user_id.map(|u| u.to_string()))
        .bind(line.name.clone())
        .bind(line.text.as_str())
        .bind(line.system.map(|s| to_json(&s)).transpose()?)
        .bind(line.at.micros())
        .fetch_one(conn)
        .await?;
        row.try_get("id")
    }

    /// Stores several lines with one statement and returns their ids, in the order given.
    ///
    /// Ids come from one multi-row `INSERT ... RETURNING id`. Neither database promises the
    /// order of RETURNING rows, but both number the rows of one statement in the order of its
    /// VALUES (SQLite's rowid and PostgreSQL's identity are taken row by row, increasing), so
    /// the ids sorted are the lines' ids in order.
    pub(crate) async fn insert_chat_lines_on<'a>(
        conn: &mut sqlx::AnyConnection,
        backend: super::Backend,
        lines: impl ExactSizeIterator<Item = (RoomId, &'a NewChatLine)>,
    ) -> Result<Vec<i64>, sqlx::Error> {
        let n = lines.len();
        let mut sql = String::from(
            "INSERT INTO chat_lines (room_id, user_id, name, text, system, at_us) VALUES ",
        );
        super::push_values(&mut sql, backend, n, 6);
        sql.push_str(" RETURNING id");
        // Only placeholders are generated; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (room, line) in lines {
            query = query
                .bind(room.to_string())
                .bind(line.user_id.map(|u| u.to_string()))
                .bind(line.name.clone())
                .bind(line.text.as_str())
                .bind(line.system.map(|s| to_json(&s)).transpose()?)
                .bind(line.at.micros());
        }
        let mut ids = query
            .fetch_all(conn)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.len() != n {
            return Err(sqlx::Error::Protocol(format!(
                "inserted {n} chat lines, got {} ids back",
                ids.len()
            )));
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Up to `limit` lines before line `before` (or the newest when `None`), oldest first.
    pub async fn chat_lines(
        &self,
        room: RoomId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ChatLine>, sqlx::Error> {
        let mut lines = sqlx::query(
            "SELECT id, user_id, name, text, system, at_us FROM chat_lines \
             WHERE room_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(room.to_string())
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(line_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        lines.reverse();
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rooms::tests::{room_row, user};
    use crate::store::testing::store;
    use lockstep_core::room::SystemLine;
    use lockstep_core::settings::Visibility;

    #[tokio::test]
    async fn pages_backwards_oldest_first() {
        let (s, _dir) = store().await;
        let owner = user(&s).await;
        let room = room_row(owner.id, Visibility::Public);
        s.create_room(&room).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            let line = NewChatLine {
                user_id: (i % 2 == 0).then_some(owner.id),
                name: Some("Ann".into()),
                text: format!("line {i}"),
                system: (i % 2 == 1).then_some(SystemLine::Joined),
                at: ServerTime(i),
            };
            ids.push(s.insert_chat_line(room.id, &line).await.unwrap());
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let newest = s.chat_lines(room.id, None, 2).await.unwrap();
        assert_eq!(
            newest.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["line 3", "line 4"]
        );
        assert_eq!(newest[0].system, Some(SystemLine::Joined));
        assert_eq!(newest[1].user_id, Some(owner.id));
        let older = s.chat_lines(room.id, Some(newest[0].id), 10).await.unwrap();
        assert_eq!(older.len(), 3);
        assert_eq!(older[0].text, "line 0");
    }
}
