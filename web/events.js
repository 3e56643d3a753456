// events.js — every event type the client knows, in one place (CONTRACT sections 4 and
// 5): the stream's own events, the board's changes, and the personal notifications with
// how the page names and explains each. The stream listens for exactly these; the inbox,
// toasts, preferences and delivery statistics take their words from here.

/** About the connection and the page's state, not stored in anyone's inbox. */
export const STATE_EVENTS = ['connected', 'reset', 'presence', 'unread_count'];

/** A card changed; `data.ticket` is the card. Every open board receives these. */
export const BOARD_EVENTS = ['ticket_created', 'ticket_updated', 'ticket_moved'];

/**
 * The personal notifications, in the order the preferences list them: the label the inbox
 * shows, what the preference is about, and the roles that can receive it when not all can.
 */
export const NOTIFICATIONS = {
  ticket_assigned: { label: 'Assigned to you', about: 'A ticket is assigned to you' },
  ticket_reassigned: { label: 'Reassigned', about: 'A ticket of yours goes to someone else, or comes to you' },
  ticket_status_changed: { label: 'Status changed', about: 'A ticket you report, follow or hold changes column' },
  ticket_priority_changed: { label: 'Priority changed', about: 'The priority of a ticket you hold or follow changes' },
  ticket_closed: { label: 'Ticket closed', about: 'A ticket you reported or follow is closed' },
  comment_added: { label: 'New comment', about: 'Someone comments on a ticket you are involved in' },
  ticket_overdue: { label: 'Overdue', about: 'A ticket passes its scheduled date' },
  new_message: { label: 'Message', about: 'Someone sends you a message' },
  machine_breakdown: {
    label: 'Breakdown', about: 'A machine breaks down', roles: ['admin', 'supervisor', 'technician'],
  },
  intervention_planned: { label: 'Intervention planned', about: 'An intervention is planned for you' },
  maintenance_due: { label: 'Maintenance due', about: 'Preventive maintenance is due', roles: ['admin', 'supervisor'] },
  user_registered: { label: 'New user', about: 'A new user is registered', roles: ['admin'] },
  role_changed: { label: 'Role changed', about: 'Your role changes' },
  settings_changed: { label: 'Settings changed', about: 'Settings are changed', roles: ['admin'] },
  broadcast: { label: 'Announcement', about: 'Announcements to everyone' },
};

export const NOTIFICATION_TYPES = Object.keys(NOTIFICATIONS);

/** Every `event:` a frame of the stream can carry. */
export const EVENT_TYPES = [...STATE_EVENTS, ...BOARD_EVENTS, ...NOTIFICATION_TYPES];

export const typeLabel = (type) => NOTIFICATIONS[type].label;

/** Whether someone with `role` can receive notifications of `type`. */
export const receivable = (type, role) => !NOTIFICATIONS[type].roles || NOTIFICATIONS[type].roles.includes(role);
