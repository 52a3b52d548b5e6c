-- 007: the functions every officer request calls, made cheap to call again; same answers, same hashes.
--
-- PostgreSQL 15 plans the body of a LANGUAGE sql function that it cannot inline (SECURITY DEFINER, or a SET
-- clause) anew in every statement that calls it, and in every execution of a PL/pgSQL statement that calls
-- it; PL/pgSQL keeps its plans for the session. Before this, the officer lookup that starts each request
-- spent 0.2 ms planning mailvault_officer_scope, and each audit row planned mailvault_audit_as's body and
-- the ten calls of mailvault_audit_field in its hash.

-- Whether the officer of this transaction sees an account (the row-level security of 005 calls it for rows).
CREATE OR REPLACE FUNCTION mailvault_officer_sees(acct integer) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM public.officers o
                   WHERE o.name = current_setting('mailvault.officer', true) AND o.enabled
                   AND (o.all_accounts OR EXISTS (SELECT 1 FROM public.officer_accounts oa
                                                  WHERE oa.officer = o.name AND oa.account_id = acct)));
END $$;

-- An officer's scope in one call (005): a row of NULLs for an unknown or disabled officer, as before.
CREATE OR REPLACE FUNCTION mailvault_officer_scope(p_officer text, OUT all_accounts boolean, OUT accounts text[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    SELECT o.all_accounts,
           CASE WHEN o.all_accounts THEN NULL
                ELSE ARRAY(SELECT a.name FROM public.officer_accounts oa JOIN public.accounts a ON a.id = oa.account_id
                           WHERE oa.officer = o.name ORDER BY a.name) END
      INTO all_accounts, accounts
      FROM public.officers o WHERE o.name = p_officer AND o.enabled;
END $$;

-- One field of an audit row's hash (005), written so that PostgreSQL inlines it into the hash expression:
-- no SET clause (every name is qualified instead) and STABLE like convert_to.
CREATE OR REPLACE FUNCTION mailvault_audit_field(t text) RETURNS bytea
    LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN t IS NULL THEN '\xffffffffffffffff'::pg_catalog.bytea
                ELSE pg_catalog.int8send(pg_catalog.octet_length(pg_catalog.convert_to(t, 'UTF8'))::pg_catalog.int8)
                     OPERATOR(pg_catalog.||) pg_catalog.convert_to(t, 'UTF8') END
$$;

-- The audit writers of 005, unchanged in what they write and who may call them.
CREATE OR REPLACE FUNCTION mailvault_audit(p_action text, p_target text, p_details jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN public.mailvault_audit_write(session_user, 'database login', host(inet_client_addr()), p_action,
                                        p_target, p_details);
END $$;

CREATE OR REPLACE FUNCTION mailvault_audit_as(p_actor text, p_via text, p_client text, p_action text, p_target text,
                                              p_details jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN public.mailvault_audit_write(p_actor, p_via, p_client, p_action, p_target, p_details);
END $$;
