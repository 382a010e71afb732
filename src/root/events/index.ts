// The events room's front door: the event log and the destinations events go to.
export { AlertmanagerOutput } from "./alertmanager.js";
export { EventLog } from "./event-log.js";
