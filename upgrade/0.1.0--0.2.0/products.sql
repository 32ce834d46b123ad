-- products: the deal columns that line items maintain (see src/core.sql
-- and src/product.sql, which adds their constraint and triggers).
ALTER TABLE salesmgmt.deal ADD COLUMN price_book_id bigint;
ALTER TABLE salesmgmt.deal ADD COLUMN max_discount_pct numeric(5,2);
COMMENT ON COLUMN salesmgmt.deal.price_book_id IS 'Price book that prices the deal''s lines (one of the deal''s currency); null for the default book of the currency.';
COMMENT ON COLUMN salesmgmt.deal.max_discount_pct IS 'Largest discount_pct of the deal''s lines, maintained with the lines (approval rules can test it); null without lines.';
