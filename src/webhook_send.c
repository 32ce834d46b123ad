/*-------------------------------------------------------------------------
 *
 * webhook_send.c
 *	  The sending phase of the webhook worker: claimed jobs become libcurl
 *	  requests on one multi handle, finished requests become outcomes that
 *	  wait to be recorded.
 *
 * libcurl runs on its socket interface (CURLMOPT_SOCKETFUNCTION and
 * CURLMOPT_TIMERFUNCTION): the sockets it wants watched are kept in an
 * epoll set of our own, and that set's descriptor sits in one
 * WaitEventSet with the worker's latch and the postmaster's death.  So
 * one wait covers the network, a commit's wake-up and the postmaster: if
 * the postmaster dies, the worker exits at once (WL_EXIT_ON_PM_DEATH)
 * whatever is in flight, as every PostgreSQL child must.
 *
 * Requests are signed just before they start, so their webhook-timestamp
 * is fresh however long they waited; headers live in the job itself
 * (curl_slist nodes and buffers), easy handles are reused with their
 * common options set once, and each secret's keyed HMAC context is kept
 * (webhook_sign.c), so starting a request allocates nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/epoll.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "webhook_deliver.h"
#include "webhook_sign.h"

#define EPOLL_BATCH		256		/* socket events taken from epoll at once */
#define EASY_POOL_MAX	512		/* idle easy handles kept for reuse */

static CURLM *multi = NULL;
static int	curl_epfd = -1;		/* the sockets libcurl wants watched */
static WaitEventSet *wait_set = NULL;
static TimestampTz timer_at = 0;	/* libcurl's timeout is due; 0: none */

static dlist_head active_jobs = DLIST_STATIC_INIT(active_jobs);

/* requests in flight per endpoint, for webhook_endpoint.max_in_flight */
typedef struct EndpointLoad
{
	int64		endpoint_id;	/* hash key */
	int			in_flight;
} EndpointLoad;

static HTAB *endpoint_load = NULL;
static CURL *easy_pool[EASY_POOL_MAX];
static int	n_easy_pool = 0;

/* ---------------------------------------------------------------------
 * libcurl's socket and timer callbacks, and the one wait
 *
 * The callbacks run inside libcurl: they must not throw, so they only
 * record what libcurl asks for.
 * --------------------------------------------------------------------- */

static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct epoll_event ev;

	if (what == CURL_POLL_REMOVE)
	{
		(void) epoll_ctl(curl_epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	ev.data.fd = s;
	/* a descriptor closed and reused drops out of the set by itself */
	if (epoll_ctl(curl_epfd, EPOLL_CTL_MOD, s, &ev) != 0 &&
		(errno != ENOENT || epoll_ctl(curl_epfd, EPOLL_CTL_ADD, s, &ev) != 0))
		return -1;
	return 0;
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	timer_at = timeout_ms < 0 ? 0 : GetCurrentTimestamp() + (int64) timeout_ms * 1000;
	return 0;
}

static void drain_curl(void);

/*
 * Wait up to timeout_ms for the network, the latch or libcurl's timer,
 * then let libcurl act on what happened and collect finished requests.
 * Returns early when the latch is set (the caller's loop resets it);
 * never returns if the postmaster dies.
 *
 * The curl sockets are looked at after every wait, whatever it reported:
 * WaitEventSetWait returns at once, with the latch alone, when the latch
 * is already set, without polling the other events.  While transactions
 * commit events at a steady rate the latch is set again during nearly
 * every cycle, and a loop that served the sockets only when the wait
 * reported them served them almost never: the worker stopped delivering
 * while events arrived (bench/webhook.sh, 2,000 moves/s: a backlog of
 * 72,000 after 35 s, commit-to-delivery p99 37 s).
 */
void
sm_webhook_send_wait(long timeout_ms)
{
	WaitEvent	events[3];
	struct epoll_event ev[EPOLL_BATCH];
	int			k;
	int			running;

	if (timer_at != 0)
	{
		int64		until_timer = (timer_at - GetCurrentTimestamp() + 999) / 1000;

		timeout_ms = Max(0, Min(timeout_ms, until_timer));
	}
	(void) WaitEventSetWait(wait_set, timeout_ms, events, lengthof(events), PG_WAIT_EXTENSION);

	k = epoll_wait(curl_epfd, ev, EPOLL_BATCH, 0);
	for (int i = 0; i < k; i++)
	{
		int			mask = 0;

		if (ev[i].events & EPOLLIN)
			mask |= CURL_CSELECT_IN;
		if (ev[i].events & EPOLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			mask |= CURL_CSELECT_ERR;
		curl_multi_socket_action(multi, ev[i].data.fd, mask, &running);
	}
	if (timer_at != 0 && GetCurrentTimestamp() >= timer_at)
	{
		timer_at = 0;			/* the action may set a new one */
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	drain_curl();
}

/*
 * Create the multi handle, the epoll set and the wait set once; apply the
 * settings every time (after a reload too).
 */
void
sm_webhook_send_setup(void)
{
	if (multi == NULL)
	{
		multi = curl_multi_init();
		if (multi == NULL)
			elog(ERROR, "could not create a libcurl multi handle");
		curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
		curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	}
	if (curl_epfd < 0)
	{
		curl_epfd = epoll_create1(EPOLL_CLOEXEC);
		if (curl_epfd < 0)
			elog(ERROR, "could not create an epoll set for webhook requests: %m");
	}
	if (endpoint_load == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(EndpointLoad);
		ctl.hcxt = TopMemoryContext;
		endpoint_load = hash_create("webhook endpoint load", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (wait_set == NULL)
	{
		wait_set = sm_create_wait_event_set(3);
		AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, curl_epfd, NULL, NULL);
	}
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) sm_webhook_concurrency);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) sm_webhook_concurrency);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) sm_webhook_concurrency * 2);
}

/* ---------------------------------------------------------------------
 * Requests
 * --------------------------------------------------------------------- */

/*
 * Keep what came from the network printable ASCII, so it is valid text
 * in any server encoding.
 */
static void
sanitize(char *s)
{
	if (s == NULL)
		return;
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
			*s = (*s == '\n' || *s == '\t') ? ' ' : '?';
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	SmWebhookJob *job = (SmWebhookJob *) userdata;
	size_t		n = size * nmemb;
	size_t		room = SM_WEBHOOK_RESPONSE_KEEP - job->response_len;

	if (room > 0)
	{
		size_t		k = Min(n, room);

		memcpy(job->response + job->response_len, ptr, k);
		job->response_len += k;
		job->response[job->response_len] = '\0';
	}
	return n;					/* the rest is read and dropped */
}

/*
 * The address guard: called by libcurl for every connection it opens, with
 * the address it resolved, so what is checked is what is connected to.
 */
static curl_socket_t
opensocket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	SmWebhookJob *job = (SmWebhookJob *) clientp;
	const char *why;

	if (!sm_webhook_allow_private_networks &&
		sm_webhook_address_refused(&address->addr, &why))
	{
		job->refused_why = why;
		if (address->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *) &address->addr)->sin_addr,
					  job->refused_addr, sizeof(job->refused_addr));
		else if (address->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &address->addr)->sin6_addr,
					  job->refused_addr, sizeof(job->refused_addr));
		else
			strlcpy(job->refused_addr, "?", sizeof(job->refused_addr));
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

#define SETOPT(h, opt, val) \
	do { \
		if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK) \
			elog(ERROR, "could not set libcurl option %s", #opt); \
	} while (0)

static EndpointLoad *
load_of(int64 endpoint_id)
{
	bool		found;
	EndpointLoad *e = hash_search(endpoint_load, &endpoint_id, HASH_ENTER, &found);

	if (!found)
		e->in_flight = 0;
	return e;
}

/*
 * An easy handle with the options every request shares, set when it is
 * made: a handle comes back to the pool as it was used (no
 * curl_easy_reset), and start_job sets every option that differs from
 * one request to the next.
 */
static CURL *
take_easy(void)
{
	CURL	   *easy;

	if (n_easy_pool > 0)
		return easy_pool[--n_easy_pool];
	easy = curl_easy_init();
	if (easy == NULL)
		elog(ERROR, "could not create a libcurl handle");
	PG_TRY();
	{
		SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
		SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
		SETOPT(easy, CURLOPT_PROXY, "");	/* no proxy from the environment */
		SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
		SETOPT(easy, CURLOPT_SSL_VERIFYPEER, 1L);
		SETOPT(easy, CURLOPT_SSL_VERIFYHOST, 2L);
		SETOPT(easy, CURLOPT_USERAGENT, "salesmgmt-webhooks/1");
		SETOPT(easy, CURLOPT_POST, 1L);
		SETOPT(easy, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
		SETOPT(easy, CURLOPT_WRITEFUNCTION, write_cb);
	}
	PG_CATCH();
	{
		curl_easy_cleanup(easy);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return easy;
}

static void
start_job(SmWebhookJob *job)
{
	static char content_type[] = "Content-Type: application/json";
	static char no_expect[] = "Expect:";
	int64		ts;
	int			len;
	CURL	   *easy;

	job->started_at = GetCurrentTimestamp();
	ts = (int64) time(NULL);

	/* the headers, in the job's own buffers and list nodes */
	snprintf(job->hdr_id, sizeof(job->hdr_id), "webhook-id: %s", job->event_id);
	snprintf(job->hdr_ts, sizeof(job->hdr_ts), "webhook-timestamp: " INT64_FORMAT, ts);
	len = strlcpy(job->hdr_sig, "webhook-signature: ", sizeof(job->hdr_sig));
	sm_webhook_signature_kept(job->secret, job->event_id, ts, job->payload,
							  job->payload_len, job->hdr_sig + len, sizeof(job->hdr_sig) - len);
	job->hdr_nodes[0].data = content_type;
	job->hdr_nodes[1].data = no_expect;
	job->hdr_nodes[2].data = job->hdr_id;
	job->hdr_nodes[3].data = job->hdr_ts;
	job->hdr_nodes[4].data = job->hdr_sig;
	for (int i = 0; i < SM_WEBHOOK_N_HEADERS; i++)
		job->hdr_nodes[i].next = i + 1 < SM_WEBHOOK_N_HEADERS ? &job->hdr_nodes[i + 1] : NULL;

	easy = take_easy();
	job->easy = easy;
	load_of(job->endpoint_id)->in_flight++;	/* until release_easy */
	SETOPT(easy, CURLOPT_URL, job->url);
	SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) sm_webhook_connect_timeout_ms);
	SETOPT(easy, CURLOPT_TIMEOUT_MS, (long) sm_webhook_timeout_ms);
	SETOPT(easy, CURLOPT_POSTFIELDS, job->payload);
	SETOPT(easy, CURLOPT_POSTFIELDSIZE, (long) job->payload_len);
	SETOPT(easy, CURLOPT_HTTPHEADER, &job->hdr_nodes[0]);
	SETOPT(easy, CURLOPT_OPENSOCKETDATA, job);
	SETOPT(easy, CURLOPT_WRITEDATA, job);
	SETOPT(easy, CURLOPT_ERRORBUFFER, job->errbuf);
	SETOPT(easy, CURLOPT_PRIVATE, job);
	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		elog(ERROR, "could not start a webhook request");
	dlist_push_tail(&active_jobs, &job->active_node);
	sm_webhook_q.n_active++;
}

/* Take the request off the multi handle; its easy handle is kept for reuse */
static void
release_easy(SmWebhookJob *job)
{
	if (job->easy)
	{
		load_of(job->endpoint_id)->in_flight--;
		curl_multi_remove_handle(multi, job->easy);
		if (n_easy_pool < EASY_POOL_MAX)
		{
			/* the job's buffers go with it: nothing may point to them */
			curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, NULL);
			curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, NULL);
			curl_easy_setopt(job->easy, CURLOPT_ERRORBUFFER, NULL);
			curl_easy_setopt(job->easy, CURLOPT_OPENSOCKETDATA, NULL);
			curl_easy_setopt(job->easy, CURLOPT_WRITEDATA, NULL);
			easy_pool[n_easy_pool++] = job->easy;
		}
		else
			curl_easy_cleanup(job->easy);
		job->easy = NULL;
	}
}

/* Judge a finished request; the job then waits to be recorded. */
static void
finish_job(SmWebhookJob *job, CURLcode code)
{
	SmWebhookQueues *q = &sm_webhook_q;
	MemoryContext old = MemoryContextSwitchTo(job->batch->cxt);
	curl_off_t	total_us = 0;
	curl_off_t	retry_after = 0;

	job->finished_at = GetCurrentTimestamp();
	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &job->status);
	if (curl_easy_getinfo(job->easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK && total_us > 0)
		job->duration_us = total_us;
	else
		job->duration_us = job->finished_at - job->started_at;
	if (curl_easy_getinfo(job->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK)
		job->retry_after_s = retry_after;

	if (code != CURLE_OK)
	{
		job->status = 0;
		if (job->refused_why)
			job->error = psprintf("refused to connect to %s, %s (salesmgmt.webhook_allow_private_networks is off)",
								  job->refused_addr, job->refused_why);
		else if (code == CURLE_OPERATION_TIMEDOUT)
			job->error = psprintf("timed out: %s", job->errbuf[0] ? job->errbuf : curl_easy_strerror(code));
		else
			job->error = pstrdup(job->errbuf[0] ? job->errbuf : curl_easy_strerror(code));
	}
	else if (job->status >= 200 && job->status <= 299)
		job->error = NULL;
	else if (job->status >= 300 && job->status <= 399)
	{
		char	   *location = NULL;

		curl_easy_getinfo(job->easy, CURLINFO_REDIRECT_URL, &location);
		job->error = psprintf("HTTP %ld: redirect to %s not followed",
							  job->status, location ? location : "(no Location)");
	}
	else if (job->status == 410)
		job->error = pstrdup("HTTP 410 Gone: endpoint disabled");
	else
		job->error = psprintf("HTTP %ld", job->status);

	sanitize(job->error);
	sanitize(job->response);
	MemoryContextSwitchTo(old);
	release_easy(job);
	dlist_delete(&job->active_node);
	q->n_active--;
	if (q->n_done == 0)
		q->first_done_at = job->finished_at;
	q->done[q->n_done++] = job;
}

static void
drain_curl(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		SmWebhookJob *job;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &job);
		finish_job(job, msg->data.result);
	}
}

/*
 * Start queued jobs, oldest first, while there is room: in the multi
 * handle, and for each endpoint under its max_in_flight.  Jobs of an
 * endpoint at its cap keep their place in the queue.
 */
void
sm_webhook_start_queued(void)
{
	SmWebhookQueues *q = &sm_webhook_q;
	int			keep = q->queue_head;
	int			i;

	for (i = q->queue_head; i < q->queue_len; i++)
	{
		SmWebhookJob *job = q->queue[i];

		if (q->n_active >= sm_webhook_concurrency ||
			q->n_done + q->n_active >= SM_WEBHOOK_RECORD_GROUP * 4)
			break;
		if (job->max_in_flight > 0 && load_of(job->endpoint_id)->in_flight >= job->max_in_flight)
			q->queue[keep++] = job; /* its endpoint is busy: wait */
		else
			start_job(job);
	}
	if (keep > q->queue_head)
	{
		/* the waiting jobs stay before the ones not looked at */
		memmove(q->queue + keep, q->queue + i, (q->queue_len - i) * sizeof(SmWebhookJob *));
		q->queue_len = keep + (q->queue_len - i);
	}
	else
		q->queue_head = i;
	if (q->queue_head == q->queue_len)
		q->queue_head = q->queue_len = 0;
}

/*
 * Abandon everything in progress after an error: requests are stopped,
 * jobs forgotten; their rows stay in flight until the leases are released.
 */
void
sm_webhook_abandon_all(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &active_jobs)
	{
		SmWebhookJob *job = dlist_container(SmWebhookJob, active_node, iter.cur);

		release_easy(job);
		dlist_delete(&job->active_node);
	}
	timer_at = 0;
	sm_webhook_q.n_active = 0;
	sm_webhook_q.queue_head = sm_webhook_q.queue_len = 0;
	sm_webhook_q.n_done = 0;
	MemoryContextReset(sm_webhook_q.worker_cxt);	/* every batch */
}
