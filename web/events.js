// events.js — every event type the client knows, in one place (CONTRACT sections 4 and
// 5): the stream's own events, the board's changes, and the personal notifications with
// who can receive each. The stream listens for exactly these; the inbox, toasts,
// preferences and delivery statistics name and explain them with the catalogue's words
// (kind.<type>.label, kind.<type>.description).

import { t } from './i18n.js';

/** About the connection and the page's state, not stored in anyone's inbox. */
export const STATE_EVENTS = ['connected', 'reset', 'presence', 'unread_count'];

/** A card changed; `data.ticket` is the card. Every open board receives these. */
export const BOARD_EVENTS = ['ticket_created', 'ticket_updated', 'ticket_moved'];

/**
 * The personal notifications, in the order the preferences list them, with the roles
 * that can receive each when not all can.
 */
export const NOTIFICATIONS = {
  ticket_assigned: {},
  ticket_reassigned: {},
  ticket_status_changed: {},
  ticket_priority_changed: {},
  ticket_closed: {},
  comment_added: {},
  ticket_overdue: {},
  new_message: {},
  machine_breakdown: { roles: ['admin', 'supervisor', 'technician'] },
  intervention_planned: {},
  maintenance_due: { roles: ['admin', 'supervisor'] },
  user_registered: { roles: ['admin'] },
  role_changed: {},
  settings_changed: { roles: ['admin'] },
  broadcast: {},
  ticket_escalated: { roles: ['admin', 'supervisor', 'technician'] },
};

export const NOTIFICATION_TYPES = Object.keys(NOTIFICATIONS);

/** Every `event:` a frame of the stream can carry. */
export const EVENT_TYPES = [...STATE_EVENTS, ...BOARD_EVENTS, ...NOTIFICATION_TYPES];

export const typeLabel = (type) => t(`kind.${type}.label`);
export const typeAbout = (type) => t(`kind.${type}.description`);

/** Whether someone with `role` can receive notifications of `type`. */
export const receivable = (type, role) => !NOTIFICATIONS[type].roles || NOTIFICATIONS[type].roles.includes(role);
