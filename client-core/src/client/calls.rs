//! Calls: joining and leaving the session's call through the relay's SFU, and the frame
//! keys every member draws afresh whenever the call's membership changes.

use zeroize::Zeroizing;

use super::{Client, Event};
use crate::content::Content;
use crate::error::Error;
use crate::ids::{ParticipantId, SessionId, fill_random};
use crate::limits::{MAX_SDP_LEN, MAX_TURN_URL_LEN, MAX_TURN_URLS};
use crate::wire::{ClientFrame, TurnAnswer};

impl Client {
    /// Enter the session's call with a WebRTC offer (all candidates gathered). The answer
    /// comes as [`Event::CallAnswer`]; frame keys follow as [`Event::MediaKey`].
    pub fn join_call(&mut self, session: SessionId, offer: &str) -> Result<(), Error> {
        if offer.len() > MAX_SDP_LEN {
            return Err(Error::Invalid("offer too long"));
        }
        if !self.sessions.contains_key(&session) {
            return Err(Error::State("unknown session"));
        }
        self.out.push_back(ClientFrame::CallJoin {
            session,
            offer: offer.to_owned(),
        });
        Ok(())
    }

    /// Stop or resume receiving the others' video in the call (a weak connection keeps
    /// its audio).
    pub fn receive_video(&mut self, session: SessionId, receive: bool) -> Result<(), Error> {
        if !self.sessions.contains_key(&session) {
            return Err(Error::State("unknown session"));
        }
        self.out
            .push_back(ClientFrame::CallVideo { session, receive });
        Ok(())
    }

    /// Leave the session's call; the chat goes on.
    pub fn leave_call(&mut self, session: SessionId) -> Result<(), Error> {
        if !self.sessions.contains_key(&session) {
            return Err(Error::State("unknown session"));
        }
        self.out.push_back(ClientFrame::CallLeave { session });
        Ok(())
    }

    /// The direct connection to the SFU failed: ask the relay for short-lived TURN
    /// credentials to retry the call through its TURN server (over TCP or TLS when UDP is
    /// blocked). The answer comes as [`Event::Turn`]; one answer is passed on per request
    /// outstanding (asking again after a lost answer is fine: the relay limits them).
    pub fn request_turn(&mut self, session: SessionId) -> Result<(), Error> {
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(Error::State("unknown session"))?;
        s.turn_asked = true;
        self.out.push_back(ClientFrame::TurnRequest { session });
        Ok(())
    }

    /// The relay's answer to [`Client::request_turn`]: passed on only when asked for, and
    /// only credentials within the protocol's limits (a relay cannot make the page try a
    /// hundred servers).
    pub(super) fn turn_answer(&mut self, session: SessionId, answer: TurnAnswer) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        if !std::mem::take(&mut s.turn_asked) {
            return;
        }
        let answer = match answer {
            TurnAnswer::Credentials { ref urls, .. }
                if urls.is_empty()
                    || urls.len() > MAX_TURN_URLS
                    || urls.iter().any(|u| {
                        u.len() > MAX_TURN_URL_LEN
                            || !(u.starts_with("turn:") || u.starts_with("turns:"))
                    }) =>
            {
                TurnAnswer::Unavailable
            }
            other => other,
        };
        self.events.push_back(Event::Turn { session, answer });
    }

    /// The call's membership changed: tell the page and, while in the call, draw a fresh
    /// frame key and send it to the other members only. Someone who left never gets a key
    /// used after they left; someone who joined never gets one used before; a member not
    /// yet confirmed in the roster gets it once they are.
    pub(super) fn call_changed(
        &mut self,
        session: SessionId,
        id: ParticipantId,
        joined: bool,
    ) -> Result<(), Error> {
        let Some(s) = self.sessions.get_mut(&session) else {
            return Ok(());
        };
        let changed = if joined {
            s.call.insert(id)
        } else {
            s.call.remove(&id)
        };
        if !changed {
            return Ok(());
        }
        let me = s.me;
        self.events.push_back(Event::CallMembers {
            session,
            members: s.call.iter().copied().collect(),
        });
        if !s.call.contains(&me) {
            return Ok(());
        }
        s.media_epoch = s.media_epoch.saturating_add(1);
        let epoch = s.media_epoch;
        let mut key = Zeroizing::new([0u8; 16]);
        fill_random(&mut key[..]);
        let others: Vec<ParticipantId> = s.call.iter().copied().filter(|p| *p != me).collect();
        let content = Content::MediaKey { epoch, key: *key };
        for to in others {
            // A member we cannot reach (refused channel) simply gets no key.
            let _ = self.send_content(session, Some(to), &content, 0);
        }
        self.events.push_back(Event::MediaKey {
            session,
            participant: me,
            epoch,
            own: true,
            key,
        });
        Ok(())
    }
}
