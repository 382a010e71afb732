// The fleet room's front door: jobs' report cards (what the bench measures of them).
export { DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, jobCard, mergeParts, type JobCard, type JobPart, type NodePart } from "./job-card.js";
export { formatJobCard } from "./job-card-text.js";
